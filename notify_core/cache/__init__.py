"""Cache, pub/sub and presence: one protocol each, in memory and in Redis.

``factory.create_cache_backends(redis_url, namespace)`` picks Redis when
``NOTIFY_REDIS_URL`` is set; otherwise everything lives in this process (one node only).
"""
