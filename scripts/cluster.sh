#!/bin/sh
# cluster.sh: a cluster of N "hosts" on one machine, for testing mpx (and any MPI program)
# across hosts. Each host is a network namespace with its own host name; the hosts are joined
# by a bridge that lives in a namespace of its own, so the machine's own interfaces, addresses
# and routes are never touched. Open MPI launches ranks into the hosts through an rsh agent
# (plm_rsh_agent) that this script generates, exactly as it would over ssh on a real cluster.
#
#   scripts/cluster.sh run -n 6 build/bin/hello --json   # up, mpiexec across the hosts, down
#   scripts/cluster.sh up                                 # create hosts mpx-h1..mpx-h3
#   scripts/cluster.sh flags                              # the mpiexec flags for them
#   scripts/cluster.sh mpiexec -n 6 build/bin/hello       # mpiexec on host 1 of a cluster that is up
#   scripts/cluster.sh exec mpx-h2 ip addr                # a command on one host
#   scripts/cluster.sh link mpx-h3 down                   # cut a host off the network
#   scripts/cluster.sh down                               # remove everything
#   scripts/cluster.sh check                              # exit 0 if namespaces work here, 77 if not
#
# Options (before the subcommand) or environment:
#   --hosts N   / MPX_CLUSTER_HOSTS   number of hosts (default 3)
#   --slots S   / MPX_CLUSTER_SLOTS   slots per host in the hostfile (default 2)
#   --name NAME / MPX_CLUSTER_NAME    prefix of every name (default "mpx"; `run` uses a private
#                                     "mpx<pid>" unless given one). Must start with "mpx".
#   MPIEXEC                           the mpiexec to run (default: mpiexec on PATH)
#
# Everything created is named after the cluster: namespaces NAME-sw (the bridge) and
# NAME-h1..NAME-hN (the hosts, whose host names are the same), and a state directory
# ${TMPDIR:-/tmp}/mpx-cluster/NAME holding the hostfile and the rsh agent. Addresses
# 10.213.0.11.. exist only inside those namespaces. `run` removes all of it on exit, on an
# error and on Ctrl-C; `down` removes it for a cluster made by `up`, killing whatever still
# runs in its hosts. A `run` whose shell was killed outright (SIGKILL) leaves its cluster
# behind; the next `run` or `down --stale` removes it.
#
# Needs root, iproute2 (`ip`) and util-linux (`unshare`). Where namespaces are not allowed
# the script prints "SKIP: <reason>" and exits 77 (ctest: SKIP_RETURN_CODE 77).
set -eu

SKIP=77
hosts=${MPX_CLUSTER_HOSTS:-3}
slots=${MPX_CLUSTER_SLOTS:-2}
name=${MPX_CLUSTER_NAME:-}
subnet=10.213.0
state_root=${TMPDIR:-/tmp}/mpx-cluster
me=$(basename "$0")

usage() {
  sed -n '2,/^set -eu/p' "$0" | sed -e '/^set -eu/d' -e 's/^# \{0,1\}//'
  exit "${1:-2}"
}

die() { echo "$me: $*" >&2; exit 1; }
skip() { echo "SKIP: $me: $*" >&2; exit "$SKIP"; }

while [ $# -gt 0 ]; do
  case $1 in
    --hosts) hosts=$2; shift 2 ;;
    --slots) slots=$2; shift 2 ;;
    --name) name=$2; shift 2 ;;
    -h|--help) usage 0 ;;
    --*) die "unknown option $1 (see $me --help)" ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || usage
cmd=$1; shift

case $hosts in ''|*[!0-9]*) die "--hosts wants a number, got '$hosts'" ;; esac
[ "$hosts" -ge 1 ] && [ "$hosts" -le 200 ] || die "--hosts must be 1..200"
case $slots in ''|*[!0-9]*) die "--slots wants a number, got '$slots'" ;; esac

# ---------------------------------------------------------------------------------------------
# Can this machine do it?

check_support() {
  [ "$(id -u)" = 0 ] || skip "network namespaces need root (running as uid $(id -u))"
  command -v ip >/dev/null 2>&1 || skip "no 'ip' command (install iproute2)"
  command -v unshare >/dev/null 2>&1 || skip "no 'unshare' command (install util-linux)"
  probe=mpxprobe$$
  if ! ip netns add "$probe" 2>/dev/null; then
    skip "'ip netns add' is not allowed here (container without CAP_SYS_ADMIN / CAP_NET_ADMIN?)"
  fi
  ok=1
  ip netns exec "$probe" unshare --uts sh -c "hostname $probe" 2>/dev/null || ok=0
  ip netns del "$probe" 2>/dev/null || true
  [ $ok = 1 ] || skip "'unshare --uts' inside a network namespace is not allowed here"
}

# ---------------------------------------------------------------------------------------------
# Names

valid_name() {
  case $1 in
    mpx*) ;;
    *) die "cluster name '$1' must start with 'mpx'" ;;
  esac
  case $1 in *[!a-zA-Z0-9_]*) die "cluster name '$1' may hold only letters, digits and _" ;; esac
}

host_name() { echo "$name-h$1"; }          # host i: namespace and host name
state_dir() { echo "$state_root/$name"; }

# ---------------------------------------------------------------------------------------------
# up / down

cluster_up() {
  valid_name "$name"
  dir=$(state_dir)
  if [ -e "$dir" ] || ip netns list 2>/dev/null | grep -q "^$name-sw\b"; then
    die "cluster '$name' is already up (or half up): run '$me --name $name down' first"
  fi
  mkdir -p "$dir"
  echo "${owner_pid:-0}" >"$dir/owner"
  echo "$hosts" >"$dir/hosts_count"
  sw="$name-sw"
  ip netns add "$sw"
  ip -n "$sw" link set lo up
  ip -n "$sw" link add mpxbr type bridge
  ip -n "$sw" link set mpxbr up
  : >"$dir/hostfile"
  printf '127.0.0.1 localhost\n' >"$dir/etc_hosts"
  i=1
  while [ "$i" -le "$hosts" ]; do
    printf '%s.%d %s\n' "$subnet" $((10 + i)) "$(host_name $i)" >>"$dir/etc_hosts"
    i=$((i + 1))
  done
  i=1
  while [ "$i" -le "$hosts" ]; do
    h=$(host_name $i)
    ip netns add "$h"
    ip link add mpx0 netns "$h" type veth peer name "h$i" netns "$sw"
    ip -n "$sw" link set "h$i" master mpxbr
    ip -n "$sw" link set "h$i" up
    ip -n "$h" link set lo up
    ip -n "$h" addr add "$subnet.$((10 + i))/24" dev mpx0
    ip -n "$h" link set mpx0 up
    echo "$h slots=$slots" >>"$dir/hostfile"
    i=$((i + 1))
  done
  write_agent "$dir"
  # The bridge needs a moment before it forwards; wait until host 1 reaches the last host.
  last=$(host_name "$hosts")
  n=0
  while ! ip netns exec "$(host_name 1)" ping -c1 -W1 "$subnet.$((10 + hosts))" >/dev/null 2>&1; do
    n=$((n + 1))
    if [ $n -ge 20 ]; then
      echo "$me: warning: $(host_name 1) cannot ping $last yet (no ping installed?)" >&2
      break
    fi
    command -v ping >/dev/null 2>&1 || break
    sleep 0.2
  done
}

# The rsh agent: Open MPI calls `AGENT HOST COMMAND...` where COMMAND is a shell command
# line (as ssh would get it). It runs it on HOST: in HOST's network namespace, in a private
# UTS namespace whose host name is HOST, with /etc/hosts naming every host of the cluster.
write_agent() {
  cat >"$1/mpx-rsh" <<EOF
#!/bin/sh
# Generated by scripts/cluster.sh for cluster '$name': Open MPI's plm_rsh_agent.
# Usage: mpx-rsh [ssh-like options] HOST COMMAND...
while [ \$# -gt 0 ]; do
  case \$1 in
    -x|-n|-T|-t|-q) shift ;;
    -o|-p|-l) shift 2 ;;
    *) break ;;
  esac
done
host=\$1; shift
case \$host in
  $name-h[0-9]*) ;;
  *) echo "mpx-rsh: no host '\$host' in cluster '$name' (hosts: $name-h1..$name-h$hosts)" >&2; exit 255 ;;
esac
exec ip netns exec "\$host" unshare --uts sh -c '
  hostname "\$0" || exit 255
  mount --bind "$1/etc_hosts" /etc/hosts 2>/dev/null || true
  exec sh -c "\$*"' "\$host" "\$@"
EOF
  chmod +x "$1/mpx-rsh"
}

kill_host_processes() {
  for ns in "$@"; do
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [ -n "$pids" ] && kill -9 $pids 2>/dev/null || true
  done
}

cluster_down() {
  valid_name "$name"
  dir=$(state_dir)
  count=$hosts
  [ -f "$dir/hosts_count" ] && count=$(cat "$dir/hosts_count")
  nss=""
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
    case $ns in
      "$name-sw") nss="$nss $ns" ;;
      "$name"-h*)
        # only NAME-h<digits>: never another cluster whose name merely starts like ours
        case ${ns#"$name"-h} in ''|*[!0-9]*) ;; *) nss="$nss $ns" ;; esac ;;
    esac
  done
  # shellcheck disable=SC2086
  kill_host_processes $nss
  for ns in $nss; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$dir"
  : "$count"
}

# Removes clusters left behind by a `run` whose shell died without cleaning up.
reap_stale() {
  [ -d "$state_root" ] || return 0
  for d in "$state_root"/mpx*; do
    [ -d "$d" ] || continue
    owner=$(cat "$d/owner" 2>/dev/null || echo 0)
    [ "$owner" != 0 ] || continue          # made by `up`: only `down` removes it
    kill -0 "$owner" 2>/dev/null && continue
    (name=$(basename "$d"); echo "$me: removing stale cluster '$name' (its run, pid $owner, is gone)" >&2
     cluster_down)
  done
}

mpiexec_flags() {
  dir=$(state_dir)
  cat <<EOF
--hostfile $dir/hostfile
--mca plm_rsh_agent $dir/mpx-rsh
--mca plm_rsh_no_tree_spawn 1
--mca pml ob1
--mca btl self,vader,tcp
--mca btl_tcp_if_include $subnet.0/24
--mca oob_tcp_if_include $subnet.0/24
--mca oob_tcp_keepalive_time 5
--mca oob_tcp_keepalive_intvl 2
--mca oob_tcp_keepalive_probes 3
--mca odls_base_sigkill_timeout 0
--oversubscribe
EOF
}

# Runs mpiexec on host 1 (so Open MPI sees the hosts as separate nodes, host 1 being the one
# it was launched on) with the cluster's flags, then the caller's arguments.
run_mpiexec() {
  dir=$(state_dir)
  [ -f "$dir/hostfile" ] || die "cluster '$name' is not up: run '$me --name $name up' first"
  # shellcheck disable=SC2046
  set -- $(mpiexec_flags) "$@"
  ip netns exec "$(host_name 1)" unshare --uts sh -c '
    hostname "$0" || exit 255
    mount --bind "$1" /etc/hosts 2>/dev/null || true
    shift
    exec "${MPIEXEC:-mpiexec}" "$@"' "$(host_name 1)" "$dir/etc_hosts" "$@"
}

case $cmd in
  check)
    check_support
    echo "$me: network namespaces work here"
    ;;
  up)
    check_support
    name=${name:-mpx}
    owner_pid=0
    trap 'echo "$me: could not create cluster $name; removing it" >&2; cluster_down' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    cluster_up
    trap - EXIT INT TERM
    echo "cluster '$name' is up: hosts $(host_name 1)..$(host_name "$hosts")"
    echo "hostfile: $(state_dir)/hostfile"
    echo "mpiexec: $me --name $name mpiexec -n $((hosts * slots)) <program>"
    ;;
  down)
    if [ "${1:-}" = --stale ]; then reap_stale; exit 0; fi
    name=${name:-mpx}
    cluster_down
    ;;
  flags)
    name=${name:-mpx}
    mpiexec_flags
    ;;
  mpiexec)
    name=${name:-mpx}
    run_mpiexec "$@"
    ;;
  exec)
    name=${name:-mpx}
    [ $# -ge 2 ] || die "usage: $me exec HOST COMMAND..."
    "$(state_dir)/mpx-rsh" "$@"
    ;;
  link)
    name=${name:-mpx}
    [ $# -eq 2 ] || die "usage: $me link HOST up|down"
    case $2 in up|down) ;; *) die "link state must be up or down" ;; esac
    ip -n "$1" link set mpx0 "$2"
    ;;
  run)
    check_support
    reap_stale
    name=${name:-mpx$$}
    owner_pid=$$
    status=0
    trap 'cluster_down' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    cluster_up
    # mpiexec runs in the background so that a signal reaches our traps at once (a shell
    # runs traps only after its foreground command ends); down then ends every process.
    run_mpiexec "$@" 0<&0 &
    child=$!
    wait $child || status=$?
    exit $status
    ;;
  *)
    die "unknown subcommand '$cmd' (see $me --help)"
    ;;
esac
