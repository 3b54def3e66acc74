"""Run a fake provider server on its own: python -m tests.fakes openai --port 8123 --delay 0.1"""

import argparse
import time

from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.gemini import FakeGemini
from tests.fakes.ollama import FakeOllama
from tests.fakes.openai import FakeOpenAI

SERVERS = {
    "openai": lambda: FakeOpenAI(api_key=None),
    "ollama": FakeOllama,
    "gemini": FakeGemini,
    "anthropic": FakeAnthropic,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("provider", choices=sorted(SERVERS))
    parser.add_argument("--port", type=int, default=0, help="on 127.0.0.1; default: a free one")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--seconds", type=float, default=3600, help="stop after this long")
    args = parser.parse_args()
    server = SERVERS[args.provider]()
    server.delay_s, server.fault_rate = args.delay, args.fault_rate
    server.start(args.port)
    print(server.url, flush=True)
    time.sleep(args.seconds)


if __name__ == "__main__":
    main()
