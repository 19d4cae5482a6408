"""A WSGI app answering what it was asked, for the runtime's tests."""


def application(environ, start_response):
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Path", environ["PATH_INFO"])])
    yield ("%s %s?%s " % (environ["REQUEST_METHOD"], environ["SCRIPT_NAME"] + environ["PATH_INFO"],
                          environ["QUERY_STRING"])).encode("latin-1")
    yield body
