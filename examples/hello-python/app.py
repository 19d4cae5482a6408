"""A Python app: each function is the handler of the event of its name."""


def hello(request, response):
    return "Hello from Python!\n"


def upper(request, response):
    return request.read().upper()
