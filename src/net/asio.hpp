#pragma once
// The one place Boost.Asio is included (internal to the net module; never in public headers).
// <utility> must come first with Boost 1.74 + g++ 12 (see architecture.md).
#include <utility>

#include <boost/asio.hpp>

namespace rumor::net {
namespace asio = boost::asio;
using tcp = boost::asio::ip::tcp;
}  // namespace rumor::net
