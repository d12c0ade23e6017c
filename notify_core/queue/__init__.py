"""The work queue: one protocol, a database implementation and a RabbitMQ one.

``create_queue(settings, database)`` picks RabbitMQ when ``NOTIFY_AMQP_URL`` is set,
otherwise the queue lives in the database.
"""
