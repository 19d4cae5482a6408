// cocaine/slave.hpp: a header-only C++17 wrapper of libcocaine-slave.
//
//     #include <cocaine/slave.hpp>
//
//     int main() {
//         cocaine::on("echo", [](cocaine::request& req, cocaine::response& resp) {
//             while (auto piece = req.next())
//                 resp.write(*piece);
//         });
//         return cocaine::run();
//     }
//
// A handler that returns normally ends its answer. One that throws
// cocaine::error answers that code and message; any other exception answers
// 502 with its what(), and is logged on stderr, the app's log. Reads and
// writes of a cancelled session throw cocaine::cancelled.
#ifndef COCAINE_SLAVE_HPP
#define COCAINE_SLAVE_HPP

#include <cocaine/slave.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <typeinfo>
#include <utility>

namespace cocaine {

// error ends a session with a code of the protocol's table (400, 404, ...).
class error : public std::runtime_error {
public:
    error(int code, const std::string& message) : std::runtime_error(message), code_(code) {}
    int code() const noexcept { return code_; }

private:
    int code_;
};

// cancelled is thrown by reads and writes once the engine gave up on the
// session (deadline, timeout, caller gone): nobody reads the answer.
class cancelled : public std::runtime_error {
public:
    cancelled() : std::runtime_error("session cancelled") {}
};

class request {
public:
    explicit request(cocaine_request* r) : r_(r) {}

    std::string_view event() const { return cocaine_request_event(r_); }

    // next returns the next piece of the body as it arrives, or nothing at
    // its end. The view is valid until the next read.
    std::optional<std::string_view> next() {
        const void* p = nullptr;
        size_t n = 0;
        int rc = cocaine_request_next(r_, &p, &n);
        if (rc < 0)
            throw cancelled();
        if (rc == 0)
            return std::nullopt;
        return std::string_view(static_cast<const char*>(p), n);
    }

    // read copies up to n bytes; 0 at the end of the body.
    size_t read(void* buf, size_t n) {
        ssize_t got = cocaine_request_read(r_, buf, n);
        if (got < 0)
            throw cancelled();
        return static_cast<size_t>(got);
    }

    // read_all returns the rest of the body.
    std::string read_all() {
        std::string out;
        while (auto piece = next())
            out.append(*piece);
        return out;
    }

    bool cancelled() const { return cocaine_request_cancelled(r_) != 0; }

    // wait_cancelled sleeps up to d, returning true early if the session
    // is cancelled.
    template <class Rep, class Period>
    bool wait_cancelled(std::chrono::duration<Rep, Period> d) {
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
        return cocaine_request_wait_cancelled(r_, static_cast<long>(ms)) != 0;
    }

private:
    cocaine_request* r_;
};

class response {
public:
    explicit response(cocaine_response* r, cocaine_request* req) : r_(r), req_(req) {}

    // write buffers bytes (up to 64 KiB before a chunk leaves).
    void write(std::string_view data) {
        if (cocaine_response_write(r_, data.data(), data.size()) < 0)
            fail();
    }
    // flush sends what is buffered now.
    void flush() {
        if (cocaine_response_flush(r_) < 0)
            fail();
    }

private:
    void fail() {
        if (cocaine_request_cancelled(req_))
            throw cocaine::cancelled();
        throw std::runtime_error("cannot answer: the session ended or the engine is gone");
    }
    cocaine_response* r_;
    cocaine_request* req_;
};

using handler = std::function<void(request&, response&)>;

namespace detail {
inline int call(cocaine_request* r, cocaine_response* w, void* data) {
    auto& h = *static_cast<handler*>(data);
    try {
        request req(r);
        response resp(w, r);
        h(req, resp);
        return 0;
    } catch (const cocaine::cancelled&) {
        return 1; // the library ends a cancelled session itself
    } catch (const cocaine::error& e) {
        cocaine_response_error(w, e.code(), "%s", e.what());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "cocaine: handler of \"%s\" threw %s: %s\n", cocaine_request_event(r), typeid(e).name(), e.what());
        cocaine_response_error(w, COCAINE_APP_ERROR, "%s", e.what());
    } catch (...) {
        std::fprintf(stderr, "cocaine: handler of \"%s\" threw a non-standard exception\n", cocaine_request_event(r));
        cocaine_response_error(w, COCAINE_APP_ERROR, "unknown exception");
    }
    return 1;
}
} // namespace detail

// on makes h serve event. Call it before run.
inline void on(const std::string& event, handler h) {
    // Handlers live as long as the program.
    if (cocaine_handle(event.c_str(), detail::call, new handler(std::move(h))) != 0)
        throw std::bad_alloc();
}

// run serves the engine until it says terminate (0) or goes away (1).
inline int run() { return cocaine_run(); }

} // namespace cocaine

#endif // COCAINE_SLAVE_HPP
