// The conformance app of slaves/conformance, in C++.
#include <cocaine/slave.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

int main() {
    cocaine::on("echo", [](cocaine::request& req, cocaine::response& resp) {
        while (auto piece = req.next())
            resp.write(*piece);
    });
    cocaine::on("sleep", [](cocaine::request& req, cocaine::response& resp) {
        std::string body = req.read_all();
        long ms;
        try {
            ms = std::stol(body);
        } catch (const std::exception&) {
            throw cocaine::error(400, "sleep: body must be milliseconds");
        }
        if (req.wait_cancelled(std::chrono::milliseconds(ms)))
            throw cocaine::cancelled();
        resp.write("ok");
    });
    cocaine::on("stream-upper", [](cocaine::request& req, cocaine::response& resp) {
        while (auto piece = req.next()) {
            std::string up(*piece);
            std::transform(up.begin(), up.end(), up.begin(), [](unsigned char c) { return std::toupper(c); });
            resp.write(up);
            resp.flush();
        }
    });
    cocaine::on("fail", [](cocaine::request&, cocaine::response&) {
        throw std::runtime_error("failing on purpose");
    });
    // flood answers 1 KiB every 10 ms and never checks for cancellation:
    // only the library throwing from a write once the engine cancelled the
    // session stops it (conformance case cancel-streaming).
    cocaine::on("flood", [](cocaine::request&, cocaine::response& resp) {
        const std::string data(1024, 'x');
        for (;;) {
            resp.write(data);
            resp.flush();
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    });
    return cocaine::run();
}
