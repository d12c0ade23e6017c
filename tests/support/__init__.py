"""What the tests stand on, apart from the tests themselves.

- ``backends``: where the real backends are, and the session's namespace prefix;
- ``ids``, ``waiting``: unique names, and polling until a condition holds;
- ``nodes``: a node in the test process and the client side of it (``Env``);
  ``deliveries``, ``digests``, ``live``: reading deliveries, seeding digests, reading
  WebSocket and SSE events;
- ``procs``, ``sockets``, ``cuts``, ``flood``: ``notify`` as child processes, who holds
  which socket, cutting a deployment's backend connections, and the fault tests' flood;
- one module per protocol fake: ``smtp`` (aiosmtpd), ``sendgrid`` (its v3 Mail Send API),
  ``webhooks`` (a receiving endpoint), ``ses`` (moto's SES server), ``sns`` (SNS's
  certificate and subscribe side), over ``asgi`` (an ASGI app on a free port).

The fixtures of the fakes are registered for every test in ``tests/conftest.py``.
"""
