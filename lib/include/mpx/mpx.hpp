// mpx/mpx.hpp: everything mpx offers, in one include.
#pragma once

#include "mpx/barrier.hpp"
#include "mpx/communicator.hpp"
#include "mpx/condition.hpp"
#include "mpx/dict.hpp"
#include "mpx/environment.hpp"
#include "mpx/error.hpp"
#include "mpx/event.hpp"
#include "mpx/future.hpp"
#include "mpx/list.hpp"
#include "mpx/lock.hpp"
#include "mpx/pipe.hpp"
#include "mpx/process.hpp"
#include "mpx/pool.hpp"
#include "mpx/queue.hpp"
#include "mpx/semaphore.hpp"
#include "mpx/shared.hpp"
