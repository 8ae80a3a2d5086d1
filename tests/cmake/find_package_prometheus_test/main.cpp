// A downstream program that uses devcache's Prometheus integration through
// find_package(devcache COMPONENTS prometheus): the collector (which links prometheus-cpp::core)
// and prometheus-cpp's text serializer.
#include <cstdio>
#include <string>

#include <prometheus/text_serializer.h>

#include <devcache/device_cache.hpp>
#include <devcache/prometheus.hpp>

int main() {
  devcache::DeviceCache<> cache;
  cache.add_device_entry("cam-1", "00:11:22:33:44:55", "10.0.0.7", 554);
  const devcache::PrometheusCollector collector(cache, {{"cache", "downstream"}});
  const std::string text = prometheus::TextSerializer().Serialize(collector.Collect());
  if (text.find("\ndevcache_devices{cache=\"downstream\"} 1\n") == std::string::npos) {
    std::fprintf(stderr, "find_package_prometheus_test: unexpected exposition:\n%s", text.c_str());
    return 1;
  }
  std::puts("find_package_prometheus_test: ok");
  return 0;
}
