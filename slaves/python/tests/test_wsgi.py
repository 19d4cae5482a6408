import sys
import unittest
import warnings
from wsgiref.validate import WSGIWarning, validator

import msgpack

import support  # noqa: F401
from cocaine import Error, Request, Response, protocol
from cocaine.wsgi import WSGI, environ
from support import Sink

META = {
    "method": "POST",
    "url": "https://example.com:8443/shop/http/caf%C3%A9/x?q=1&r=%20",
    "path": "/shop/http/caf%C3%A9/x",
    "query": "q=1&r=%20",
    "host": "example.com:8443",
    "remote_addr": "[2001:db8::1]:51234",
    "secure": True,
    "headers": {
        "Content-Type": ["text/plain; charset=utf-8"],
        "Content-Length": ["11"],
        "Accept": ["text/html", "application/json"],
        "Cookie": ["a=1", "b=2"],
        "X_Forwarded_For": ["spoofed"],
    },
    "cookies": {"a": "1", "b": "2"},
    "script_name": "/shop/http",
    "path_info": "/caf%C3%A9/x",
}


def serve(app, meta, *chunks, split_head=False):
    """Drive app through the adapter as the worker does; returns
    (head, body chunks, final frame, the sink)."""
    req, sink = Request("http"), Sink()
    first = chunks[0] if chunks else b""
    if split_head:
        # The map over two chunks, and body bytes right after it.
        head = msgpack.packb({"meta": meta}, use_bin_type=True)
        req._push(head[:5])
        req._push(head[5:] + first)
    else:
        req._push(msgpack.packb({"meta": meta, "body": first}, use_bin_type=True))
    for c in chunks[1:]:
        req._push(c)
    req._finish()
    resp = Response(1, sink, req)
    try:
        WSGI(app)(req, resp)
        resp.close()
    except Exception as e:
        resp._fail(502, str(e))
        raise
    finally:
        frames = sink.frames
    chunks = [f[2] for f in frames if f[0] == protocol.CHUNK]
    return (msgpack.unpackb(chunks[0], raw=False) if chunks else None), chunks[1:], frames[-1], sink


class EnvironTest(unittest.TestCase):
    def test_environ(self):
        env = environ(META, Request("http"))
        want = {
            "REQUEST_METHOD": "POST",
            "SCRIPT_NAME": "/shop/http",
            "PATH_INFO": "/caf\xc3\xa9/x",  # PEP 3333: the bytes, as latin-1
            "QUERY_STRING": "q=1&r=%20",
            "REQUEST_URI": "/shop/http/caf%C3%A9/x?q=1&r=%20",
            "CONTENT_TYPE": "text/plain; charset=utf-8",
            "CONTENT_LENGTH": "11",
            "SERVER_NAME": "example.com",
            "SERVER_PORT": "8443",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "2001:db8::1",
            "REMOTE_PORT": "51234",
            "HTTPS": "on",
            "HTTP_HOST": "example.com:8443",
            "HTTP_ACCEPT": "text/html,application/json",
            "HTTP_COOKIE": "a=1; b=2",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "https",
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        for k, v in want.items():
            self.assertEqual(env.get(k), v, k)
        self.assertIs(env["wsgi.errors"], sys.stderr)
        for k in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH", "HTTP_X_FORWARDED_FOR"):
            self.assertNotIn(k, env)

    def test_multithread(self):
        self.assertIs(environ(META, Request("http"), multithread=True)["wsgi.multithread"], True)

    def test_defaults(self):
        env = environ({"method": "GET", "path": "/a%2Fb", "remote_addr": "10.0.0.1:80",
                       "headers": {"X-Raw": "\udcff"}}, Request("http"))
        self.assertEqual((env["SCRIPT_NAME"], env["PATH_INFO"]), ("", "/a/b"))
        self.assertEqual((env["SERVER_NAME"], env["SERVER_PORT"], env["wsgi.url_scheme"]), ("localhost", "80", "http"))
        self.assertEqual((env["REMOTE_ADDR"], env["REMOTE_PORT"]), ("10.0.0.1", "80"))
        self.assertEqual(env["HTTP_X_RAW"], "\xff", "a header byte that is not UTF-8 survives")
        self.assertNotIn("CONTENT_LENGTH", env)
        env = environ({"script_name": "/", "path_info": ""}, Request("http"))
        self.assertEqual((env["SCRIPT_NAME"], env["PATH_INFO"]), ("", "/"))


# The validator's iterators: each must have been closed by the adapter (the
# validator only complains from __del__, where an assertion cannot fail a test).
ITERATORS = []


def validated(app):
    """app checked by wsgiref's validator, its warnings turned into failures."""
    checked = validator(app)

    def run(environ, start_response):
        with warnings.catch_warnings():
            warnings.simplefilter("error", WSGIWarning)
            it = checked(environ, start_response)
        ITERATORS.append(it)
        return it
    return run


class AdapterTest(unittest.TestCase):
    def tearDown(self):
        closed = [it.closed for it in ITERATORS]
        ITERATORS.clear()
        self.assertTrue(all(closed), "close() not called on the app's iterable")

    def test_validator_streaming_app(self):
        seen = {}

        def app(environ, start_response):
            inp = environ["wsgi.input"]
            seen["first"] = inp.readline()
            seen["rest"] = inp.read(int(environ["CONTENT_LENGTH"]) - len(seen["first"]))
            start_response("201 Created", [("Content-Type", "text/plain"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])

            def body():
                yield b""
                yield b"one,"
                yield b"two"
            return body()

        head, body, end, sink = serve(validated(app), META, b"hello\n", b"world")
        self.assertEqual(seen, {"first": b"hello\n", "rest": b"world"})
        self.assertEqual(head, {"code": 201, "headers": [["Content-Type", "text/plain"], ["Set-Cookie", "a=1"], ["Set-Cookie", "b=2"]]})
        self.assertEqual(body, [b"one,", b"two"])
        self.assertEqual(end, [protocol.CHOKE, 1])
        self.assertGreaterEqual(len(sink.writes), 2, "a generator's blocks go out as they come")

    def test_validator_list_app_reading_without_length(self):
        def app(environ, start_response):
            data = b"".join(environ["wsgi.input"])  # lines, to the end of the body
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(data)))])
            return [data.upper()]

        meta = dict(META, headers={})
        head, body, end, sink = serve(validated(app), meta, b"a\nb", b"\nc", split_head=True)
        self.assertEqual(head["code"], 200)
        self.assertEqual(body, [b"A\nB\nC"])
        self.assertEqual(end, [protocol.CHOKE, 1])

    def test_a_list_answer_leaves_in_one_write(self):
        def app(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"a", b"b"]

        _, body, _, sink = serve(app, META)  # unvalidated: the validator wraps lists
        self.assertEqual(body, [b"ab"])
        self.assertEqual(len(sink.writes), 1, "head, body and end in one write")

    def test_empty_body_still_sends_the_head(self):
        def app(environ, start_response):
            start_response("204 No Content", [])
            return []

        head, body, end, _ = serve(validated(app), META)
        self.assertEqual((head, body, end), ({"code": 204, "headers": []}, [], [protocol.CHOKE, 1]))

    def test_write_callable_sends_at_once(self):
        def app(environ, start_response):
            write = start_response("200 OK", [("Content-Type", "text/plain")])
            write(b"early")
            return [b"late"]

        head, body, end, sink = serve(validated(app), META)
        self.assertEqual(body, [b"early", b"late"])
        self.assertEqual(sink.writes[0][1], [protocol.CHUNK, 1, b"early"])

    def test_exc_info_before_the_head_replaces_it(self):
        def app(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain")])
            try:
                raise KeyError("oops")
            except KeyError:
                start_response("500 Internal Server Error", [("Content-Type", "text/x-error")], sys.exc_info())
            return [b"sorry"]

        head, body, _, _ = serve(validated(app), META)
        self.assertEqual(head, {"code": 500, "headers": [["Content-Type", "text/x-error"]]})
        self.assertEqual(body, [b"sorry"])

    def test_exc_info_after_the_head_raises_and_close_is_called(self):
        closed = []

        class Body:
            def __init__(self, start_response):
                self.start_response = start_response

            def __iter__(self):
                yield b"started"
                try:
                    raise KeyError("oops")
                except KeyError:
                    self.start_response("500 Internal Server Error", [], sys.exc_info())

            def close(self):
                closed.append(True)

        def app(environ, start_response):
            start_response("200 OK", [])
            return Body(start_response)

        with self.assertRaises(KeyError):
            serve(app, META)
        self.assertEqual(closed, [True])

    def test_start_response_twice_without_exc_info(self):
        def app(environ, start_response):
            start_response("200 OK", [])
            start_response("200 OK", [])

        with self.assertRaises(AssertionError):
            serve(app, META)

    def test_bad_head(self):
        for chunks in ([msgpack.packb([1, 2])], [b"\xc1"], [msgpack.packb({"meta": {}})[:3]]):
            req = Request("http")
            for c in chunks:
                req._push(c)
            req._finish()
            with self.assertRaises(Error) as e:
                WSGI(None)(req, Response(1, Sink(), req))
            self.assertEqual(e.exception.code, 400, chunks)


if __name__ == "__main__":
    unittest.main()
