"""The five ports one TorchServe listens on, and a check that they are free before it starts."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from urllib.parse import urlsplit


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
                s.bind(("127.0.0.1", 0))
                sockets.append(s)
            return cls(*(s.getsockname()[1] for s in sockets))
        finally:
            for s in sockets:
                s.close()

    def addresses(self, props: dict[str, str]) -> dict[str, str]:
        """config.properties address/port keys for these ports, keeping each bind host of `props`."""

        def url(key: str, port: int) -> str:
            return f"http://{urlsplit(props.get(key, 'http://127.0.0.1')).hostname}:{port}"

        return {
            "inference_address": url("inference_address", self.inference),
            "management_address": url("management_address", self.management),
            "metrics_address": url("metrics_address", self.metrics),
            "grpc_inference_port": str(self.grpc_inference),
            "grpc_management_port": str(self.grpc_management),
        }


def check_free(ports: Ports) -> None:
    """Raise OSError naming the first port on 127.0.0.1 that something already listens on."""
    for name, port in vars(ports).items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                raise OSError(
                    f"{name} port {port} is in use on 127.0.0.1 (another TorchServe? `make stop`, "
                    "or choose other ports)"
                )
