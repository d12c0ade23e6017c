"""The work queue: one protocol, a database implementation and a RabbitMQ one.

``factory.create_queue(amqp_url, database, namespace, queues)`` picks RabbitMQ when
``NOTIFY_AMQP_URL`` is set, otherwise the queue lives in the database.
"""
