"""The TLS trust of every outgoing connection to a provider or a user's endpoint (FCM,
APNs, web push, webhooks, Twilio, SendGrid): the system's store, or the file named by the
standard ``SSL_CERT_FILE`` (and directory ``SSL_CERT_DIR``), which OpenSSL reads in place
of its defaults when set. Read when a provider is built, not per connection."""

from __future__ import annotations

import ssl


def client_tls() -> ssl.SSLContext:
    return ssl.create_default_context()
