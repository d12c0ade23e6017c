"""The baseline: a bare grpc.aio server answering IngestService.Send with no work.

Same messages as Notify (``SendRequest`` in, ``SendResponse(id=uuid4)`` out), no auth
interceptor, no health service, no database: the ceiling of a Python grpc.aio server on
this machine, against which the ingest throughput is compared.

    .venv/bin/python bench/echo_server.py --port 50099
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import uuid

import grpc
from notify.v1 import ingest_pb2, ingest_pb2_grpc


class EchoIngest(ingest_pb2_grpc.IngestServiceServicer):  # type: ignore[misc]
    async def Send(
        self, request: ingest_pb2.SendRequest, context: grpc.aio.ServicerContext
    ) -> ingest_pb2.SendResponse:
        return ingest_pb2.SendResponse(id=str(uuid.uuid4()))


async def serve(port: int) -> None:
    server = grpc.aio.server()
    ingest_pb2_grpc.add_IngestServiceServicer_to_server(EchoIngest(), server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"echo: listening on 127.0.0.1:{bound}", flush=True)
    await stop.wait()
    await server.stop(grace=1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=50099, help="port on 127.0.0.1")
    args = parser.parse_args()
    asyncio.run(serve(args.port))


if __name__ == "__main__":
    main()
