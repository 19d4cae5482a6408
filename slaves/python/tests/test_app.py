import json
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

import support
from cocaine import Error, Request, Response, app
from support import Sink


def package(files):
    """A temporary app package holding files {name: text}."""
    d = tempfile.TemporaryDirectory()
    for name, text in files.items():
        path = os.path.join(d.name, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text if isinstance(text, str) else json.dumps(text))
    return d


class LoadTest(unittest.TestCase):
    def setUp(self):
        self._path, self._modules = list(sys.path), set(sys.modules)

    def tearDown(self):
        sys.path[:] = self._path
        for m in set(sys.modules) - self._modules:
            del sys.modules[m]

    def load(self, files, args):
        d = package(files)
        self.addCleanup(d.cleanup)
        return app.load(d.name, {"type": "python", "args": args})

    def call(self, dispatch, event, body=b""):
        r, s = Request(event), Sink()
        r._push(body)
        r._finish()
        w = Response(1, s, r)
        dispatch(r, w)
        w.close()
        return s

    def test_events_are_module_functions(self):
        d = self.load({"lib/helper.py": "def shout(b): return b.upper()\n", "handlers_a.py": textwrap.dedent("""
            from json import dumps        # imported: not an event
            from helper import shout
            def upper(request, response):
                return shout(request.read())
            def stream_upper(request, response):
                yield b"a"
                yield "b"
            def listed(request, response):
                return [b"x", b"y"]
            def _private(request, response):
                return b"no"
            def nothing(request, response):
                response.write(b"by hand")
            """)}, {"module": "handlers_a", "path": ["lib"]})
        self.assertEqual(self.call(d, "upper", b"abc").body(), b"ABC")
        s = self.call(d, "stream-upper")
        self.assertEqual(len(s.writes), 3, "a generator's pieces go out as they come")
        self.assertEqual(s.body(), b"ab")
        s = self.call(d, "listed")
        self.assertEqual(len(s.writes), 1, "a list goes out with the end")
        self.assertEqual(self.call(d, "nothing").body(), b"by hand")
        for event in ("dumps", "shout", "_private", "__init__", "no-such"):
            with self.assertRaises(Error) as e:
                self.call(d, event)
            self.assertEqual(e.exception.code, 404, event)

    def test_all_lists_the_events(self):
        d = self.load({
            "shared_b.py": "def hello(request, response):\n    return b'hi'\n",
            "handlers_b.py": "from shared_b import hello\ndef hidden(request, response): pass\n__all__ = ['hello']\n",
        }, {"module": "handlers_b"})
        self.assertEqual(self.call(d, "hello").body(), b"hi")
        with self.assertRaises(Error):
            self.call(d, "hidden")

    def test_bad_return_value(self):
        d = self.load({"handlers_c.py": "def f(request, response):\n    return {'a': 1}\n"}, {"module": "handlers_c"})
        with self.assertRaises(TypeError):
            self.call(d, "f")

    def test_generator_is_closed(self):
        d = self.load({"handlers_d.py": textwrap.dedent("""
            closed = []
            def f(request, response):
                try:
                    yield b"x"
                    raise ValueError("boom")
                finally:
                    closed.append(True)
            """)}, {"module": "handlers_d"})
        with self.assertRaises(ValueError):
            self.call(d, "f")
        self.assertEqual(sys.modules["handlers_d"].closed, [True])

    def test_manifest_errors(self):
        for args in ({}, {"module": 5}, {"wsgi": "nocolon"}, {"module": "m", "path": "lib"}):
            with self.assertRaises(app.ManifestError, msg=args):
                app.load(tempfile.gettempdir(), {"type": "python", "args": args})
        with self.assertRaises(app.ManifestError):
            app.load(tempfile.gettempdir(), {"type": "go", "args": {"module": "m"}})

    def test_concurrency(self):
        for manifest, want in (({}, 1), ({"engine": {"concurrency": 4}}, 4), ({"engine": {"concurrency": 0}}, 1),
                               ({"engine": {"concurrency": "8"}}, 1), ({"engine": []}, 1)):
            self.assertEqual(app.concurrency(manifest), want, manifest)

    def test_missing_requirements(self):
        d = package({"requirements.txt": "# comment\nmsgpack>=1.0\n-r other.txt\n"
                                         "surely-not-installed-pkg==1.2  # pinned\n\nunittest\n"})
        self.addCleanup(d.cleanup)
        self.assertEqual(app.missing_requirements(d.name), ["surely-not-installed-pkg==1.2"])


class LauncherTest(unittest.TestCase):
    """The launcher as the engine runs it, for what happens before the handshake."""

    def run_launcher(self, files):
        d = package(files)
        self.addCleanup(d.cleanup)
        env = dict(os.environ, COCAINE_SOCKET=os.path.join(d.name, "no-such-socket"), COCAINE_SLAVE_ID="x")
        return subprocess.run([sys.executable, os.path.join(support.ROOT, "cocaine_slave.py")],
                              cwd=d.name, env=env, capture_output=True, text=True, timeout=30)

    def test_import_error_exits_before_connecting(self):
        p = self.run_launcher({
            "manifest.json": {"type": "python", "args": {"module": "broken"}},
            "broken.py": "import surely_not_installed_pkg\n",
            "requirements.txt": "surely-not-installed-pkg\nmsgpack\n",
        })
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("Traceback", p.stderr)
        self.assertIn("ModuleNotFoundError", p.stderr)
        self.assertIn("requirements.txt: not installed: surely-not-installed-pkg\n", p.stderr)
        self.assertNotIn("connect", p.stderr)

    def test_bad_manifest(self):
        p = self.run_launcher({"manifest.json": {"type": "python", "args": {}}})
        self.assertEqual(p.returncode, 2)
        self.assertIn("args.module", p.stderr)


if __name__ == "__main__":
    unittest.main()
