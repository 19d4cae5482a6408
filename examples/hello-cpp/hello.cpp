// A C++ app: built by the cpp sandbox at deploy with the header-only
// wrapper cocaine/slave.hpp over libcocaine-slave.
//
//   bin/cocaine call hello-cpp/hello
//   head -c 5000000 /dev/urandom | bin/cocaine call hello-cpp/echo | wc -c
//   bin/cocaine call hello-cpp/stream
#include <cocaine/slave.hpp>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
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
    // A body naming a file makes part 1 wait for that file instead (tests
    // use it to prove part 0 arrived while the handler still ran).
    cocaine::on("stream", [](cocaine::request& req, cocaine::response& resp) {
        std::string gate = req.read_all();
        for (int i = 0; i < 3; i++) {
            resp.write("part " + std::to_string(i) + "\n");
            resp.flush();
            if (i == 0 && !gate.empty()) {
                for (int waited = 0; !std::filesystem::exists(gate) && waited < 60000; waited += 10)
                    if (req.wait_cancelled(10ms))
                        throw cocaine::cancelled();
            } else if (i < 2 && gate.empty() && req.wait_cancelled(300ms)) {
                throw cocaine::cancelled();
            }
        }
    });
    // slow sleeps for the milliseconds in the body (default 1000). "MS DIR"
    // also leaves a file named for this process's pid in DIR: tests kill
    // the slave that runs the request.
    cocaine::on("slow", [](cocaine::request& req, cocaine::response& resp) {
        std::istringstream body(req.read_all());
        long ms = 1000;
        std::string dir;
        if (body.rdbuf()->in_avail() > 0 && !(body >> ms))
            throw cocaine::error(400, "slow: the body must be milliseconds");
        if (body >> dir)
            std::ofstream(dir + "/" + std::to_string(getpid()));
        if (req.wait_cancelled(std::chrono::milliseconds(ms)))
            throw cocaine::cancelled();
        resp.write("slept");
    });
    return cocaine::run();
}
