"""The five ports one TorchServe listens on (defined here once), and a check that they are free.

`Ports()` is the standard set every shipped config uses (tests/serving/test_configs.py holds
serving/config*.properties, the k8s manifests and the Dockerfile to it); `Ports.from_properties`
reads the set a config file names. Shell scripts and the Makefile ask this module:

    python -m serving.ports inference     # -> http://127.0.0.1:8080
"""

from __future__ import annotations

import argparse
import socket
import sys
from dataclasses import dataclass, fields
from urllib.parse import urlsplit

LOOPBACK = "127.0.0.1"
# config.properties keys of the HTTP ports (URLs) and of the gRPC ports (bare numbers).
ADDRESS_KEYS = {
    "inference": "inference_address",
    "management": "management_address",
    "metrics": "metrics_address",
}
GRPC_KEYS = {"grpc_inference": "grpc_inference_port", "grpc_management": "grpc_management_port"}


@dataclass(frozen=True)
class Ports:
    inference: int = 8080
    management: int = 8081
    metrics: int = 8082
    # TorchServe always starts gRPC servers too; a second server on one host needs other ports.
    grpc_inference: int = 7070
    grpc_management: int = 7071

    @classmethod
    def free(cls) -> Ports:
        """Five distinct ports that nothing listens on right now (for tests and side-by-side runs)."""
        sockets = []
        try:
            for _ in range(5):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.bind((LOOPBACK, 0))
                sockets.append(s)
            return cls(*(s.getsockname()[1] for s in sockets))
        finally:
            for s in sockets:
                s.close()

    @classmethod
    def from_properties(cls, props: dict[str, str]) -> Ports:
        """The ports a config.properties names; a key it lacks keeps TorchServe's (our) default."""
        values = {}
        for name, key in ADDRESS_KEYS.items():
            if key in props:
                port = urlsplit(props[key]).port
                if port is None:
                    raise ValueError(f"{key}={props[key]} names no port")
                values[name] = port
        for name, key in GRPC_KEYS.items():
            if key in props:
                values[name] = int(props[key])
        return cls(**values)

    def addresses(self, props: dict[str, str]) -> dict[str, str]:
        """config.properties address/port keys for these ports, keeping each bind host of `props`."""

        def url(key: str, port: int) -> str:
            return f"http://{urlsplit(props.get(key, f'http://{LOOPBACK}')).hostname}:{port}"

        return {
            **{key: url(key, getattr(self, name)) for name, key in ADDRESS_KEYS.items()},
            **{key: str(getattr(self, name)) for name, key in GRPC_KEYS.items()},
        }


def local_url(kind: str = "inference", ports: Ports | None = None) -> str:
    """http://127.0.0.1:<port> of one of the HTTP APIs (inference, management, metrics)."""
    if kind not in ADDRESS_KEYS:
        raise ValueError(f"unknown API {kind!r}; choose one of {', '.join(ADDRESS_KEYS)}")
    return f"http://{LOOPBACK}:{getattr(ports or Ports(), kind)}"


def check_free(ports: Ports) -> None:
    """Raise OSError naming the first port on 127.0.0.1 that something already listens on."""
    for field in fields(ports):
        port = getattr(ports, field.name)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            if s.connect_ex((LOOPBACK, port)) == 0:
                raise OSError(
                    f"{field.name} port {port} is in use on {LOOPBACK} (another TorchServe? `make stop`, "
                    "or choose other ports)"
                )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the local URL of one TorchServe API.")
    parser.add_argument("api", choices=list(ADDRESS_KEYS))
    print(local_url(parser.parse_args(argv).api))
    return 0


if __name__ == "__main__":
    sys.exit(main())
