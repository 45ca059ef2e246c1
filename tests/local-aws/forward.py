"""TCP forwarder: `forward.py LISTEN_HOST:PORT=TARGET_HOST:PORT ...`. SAM CLI 1.170 runs its
containers on Docker's bridge network even with --docker-network host, so a function container
cannot reach the local stack on 127.0.0.x; scripts/sam-local forwards the bridge gateway's ports
to it for the duration of its invocations."""

import asyncio
import sys


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


def handler(target_host, target_port):
    async def handle(client_reader, client_writer):
        try:
            up_reader, up_writer = await asyncio.open_connection(target_host, target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, up_writer), pipe(up_reader, client_writer))
    return handle


async def main(pairs):
    servers = []
    pairs = list(dict.fromkeys(pairs))  # S3 and DynamoDB may share one endpoint
    for pair in pairs:
        listen, target = pair.split("=")
        lh, lp = listen.rsplit(":", 1)
        th, tp = target.rsplit(":", 1)
        servers.append(await asyncio.start_server(handler(th, int(tp)), lh, int(lp)))
    print("forwarding " + ", ".join(pairs), flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
