#pragma once
// The network-thread rules. Asserted: everything network-side (session state, link queues on
// the network side, sockets, timers) runs on the one thread that runs the io_context. Debug
// builds check it at the top of each such function; release builds (NDEBUG) compile it away.
#include <atomic>
#include <cassert>
#include <exception>
#include <thread>

namespace rumor::net {

class NetThreadCheck {
 public:
#ifdef NDEBUG
  void bind_to_current_thread() {}
  void assert_on_net_thread() const {}
#else
  // Called by the network thread before it runs the io_context.
  void bind_to_current_thread() {
    id_.store(std::this_thread::get_id());
  }
  void assert_on_net_thread() const {
    assert(id_.load() == std::this_thread::get_id() && "must run on the network thread");
  }

 private:
  std::atomic<std::thread::id> id_{};
#endif
};

// Runs the body of a network-thread handler. An exception it throws goes to on_error(what)
// (which must not throw) instead of the io_context loop, where it would stop the network
// thread or, caught there, leave a connection half-updated.
template <typename Body, typename OnError>
void run_guarded(Body&& body, OnError&& on_error) noexcept {
  try {
    body();
  } catch (const std::exception& e) {
    on_error(e.what());
  } catch (...) {
    on_error("unknown exception");
  }
}

}  // namespace rumor::net
