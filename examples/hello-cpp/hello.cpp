// A C++ app: built by the cpp sandbox at deploy with the header-only
// wrapper cocaine/slave.hpp over libcocaine-slave.
//
//   bin/cocaine call hello-cpp/hello
//   head -c 5000000 /dev/urandom | bin/cocaine call hello-cpp/echo | wc -c
//   bin/cocaine call hello-cpp/stream
#include <cocaine/slave.hpp>

#include <chrono>
#include <string>

using namespace std::chrono_literals;

int main() {
    cocaine::on("hello", [](cocaine::request&, cocaine::response& resp) {
        resp.write("Hello from C++!\n");
    });
    // echo streams the body back as it arrives, bytes untouched.
    cocaine::on("echo", [](cocaine::request& req, cocaine::response& resp) {
        while (auto piece = req.next())
            resp.write(*piece);
    });
    // stream sends three parts 300 ms apart, each as soon as it is ready.
    cocaine::on("stream", [](cocaine::request& req, cocaine::response& resp) {
        for (int i = 0; i < 3; i++) {
            resp.write("part " + std::to_string(i) + "\n");
            resp.flush();
            if (i < 2 && req.wait_cancelled(300ms))
                throw cocaine::cancelled();
        }
    });
    // slow sleeps for the milliseconds in the body (default 1000).
    cocaine::on("slow", [](cocaine::request& req, cocaine::response& resp) {
        std::string body = req.read_all();
        long ms = 1000;
        if (!body.empty()) {
            try {
                ms = std::stol(body);
            } catch (const std::exception&) {
                throw cocaine::error(400, "slow: the body must be milliseconds");
            }
        }
        if (req.wait_cancelled(std::chrono::milliseconds(ms)))
            throw cocaine::cancelled();
        resp.write("slept");
    });
    return cocaine::run();
}
