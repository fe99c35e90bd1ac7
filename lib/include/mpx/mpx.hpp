// mpx/mpx.hpp: everything mpx offers, in one include.
#pragma once

#include "mpx/communicator.hpp"
#include "mpx/environment.hpp"
#include "mpx/error.hpp"
#include "mpx/future.hpp"
#include "mpx/lock.hpp"
#include "mpx/pipe.hpp"
#include "mpx/queue.hpp"
