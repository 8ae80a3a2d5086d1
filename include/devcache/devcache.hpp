// devcache/devcache.hpp — the umbrella header: includes every public devcache header, nothing else.
// Include the individual headers to keep compile times down.
#pragma once

#include <devcache/cuckoo_map.hpp>
#include <devcache/device_cache.hpp>
#include <devcache/device_cache_manager.hpp>
#include <devcache/device_entry.hpp>
#include <devcache/errors.hpp>
#include <devcache/hash_seed.hpp>
#include <devcache/ip_address.hpp>
#include <devcache/mac_address.hpp>
#include <devcache/manual_clock.hpp>
#include <devcache/sharded_map.hpp>
