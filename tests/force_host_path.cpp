// Linked into the "_noshm" variants of the synchronisation tests: sets MPX_NO_SHARED_MEMORY=1
// before main(), so every object takes the cross-node path (state on a host rank, served by
// its progress thread) although all ranks share one machine.
#include "sync_test_util.hpp"

namespace {
const sync_test::ForceHostPath force_host_path;
}
