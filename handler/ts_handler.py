"""The TorchServe adapter: a thin BaseHandler subclass around the runtime-neutral core.

TorchServe imports this file as the .mar's handler (it must define exactly one class). It builds the
core from the model directory, hands each batch to InferenceService, and maps the answers back:
per-request HTTP status via `context.set_response_status(code, phrase, idx)`, a JSON body and content
type for every request, and the handler metrics declared in the server's metrics config
(serving/metrics.yaml): PredictionsPerLabel, PredictionConfidence, PreprocessTimeMs,
HandlerLatencySeconds.
"""

from __future__ import annotations

import http
import json
import logging
import os
import time
from pathlib import Path

from ts.metrics.metric_cache_errors import MetricsCacheKeyError
from ts.metrics.metric_type_enum import MetricTypes
from ts.torch_handler.base_handler import BaseHandler

from handler.inference import Classifier, ModelSpec
from handler.protocols import RawRequest
from handler.service import Answer, InferenceService
from handler.settings import Settings

logger = logging.getLogger(__name__)

# name -> (type, unit, dimensions); the server's metrics config must declare the same (or Prometheus
# never shows them). Dimension values are looked up by name, so their order there does not matter.
METRICS = {
    "PredictionsPerLabel": (MetricTypes.COUNTER, "count", ["ModelName", "Level", "Label"]),
    "PredictionConfidence": (MetricTypes.HISTOGRAM, "probability", ["ModelName", "Level", "Label"]),
    "PreprocessTimeMs": (MetricTypes.HISTOGRAM, "ms", ["ModelName", "Level"]),
    # Seconds, because TorchServe 0.12 gives every histogram the Prometheus client's default buckets
    # (5 ms ... 10 s): the standard latency buckets, and useless for a value in milliseconds.
    "HandlerLatencySeconds": (MetricTypes.HISTOGRAM, "s", ["ModelName", "Level"]),
}


class CatsDogsHandler(BaseHandler):
    def initialize(self, context) -> None:
        config = context.model_yaml_config or {}
        settings = Settings.resolve(config.get("handler"), os.environ)
        classifier = Classifier.load(
            Path(context.system_properties["model_dir"]),
            ModelSpec.from_config(config.get("model")),
            version=context.manifest["model"]["modelVersion"],
            threads=settings.threads,
            max_pixels=settings.max_pixels,
        )
        self.service = InferenceService(classifier, context.model_name, settings.max_instances)
        self.context = context
        self.initialized = True
        logger.info("catsdogs handler ready: %s, runtime %s", settings, classifier.runtime.name)

    def handle(self, data: list[dict], context) -> list[str]:
        started = time.perf_counter()
        requests = [RawRequest(fields, _content_types(context, idx)) for idx, fields in enumerate(data)]
        answers = self.service.answer(requests)
        for idx, answer in enumerate(answers):
            context.set_response_status(answer.status, http.HTTPStatus(answer.status).phrase, idx)
            context.set_response_content_type(idx, "application/json")
        bodies = [json.dumps(answer.body) for answer in answers]
        self._record_metrics(context, answers, time.perf_counter() - started)
        return bodies

    def _record_metrics(self, context, answers: list[Answer], batch_seconds: float) -> None:
        if context.metrics is None:
            return
        try:
            for idx, answer in enumerate(answers):
                request_id = context.get_request_id(idx)
                _emit(context, "PreprocessTimeMs", answer.preprocess_ms, request_id)
                # Every request of a batch waited for the whole batch: its latency in the worker.
                _emit(context, "HandlerLatencySeconds", batch_seconds, request_id)
                for prediction in answer.predictions:
                    _emit(context, "PredictionsPerLabel", 1, request_id, Label=prediction.label)
                    _emit(
                        context,
                        "PredictionConfidence",
                        prediction.confidence,
                        request_id,
                        Label=prediction.label,
                    )
        except Exception:  # metrics must never cost a client its answer
            logger.warning("could not record handler metrics", exc_info=True)


def _emit(context, name: str, value: float, request_id: str | None, **dimensions: str) -> None:
    metric_type, unit, dimension_names = METRICS[name]
    try:
        metric = context.metrics.get_metric(name, metric_type)
    except MetricsCacheKeyError:  # not declared in the metrics config: log-only, still useful in logs
        metric = context.metrics.add_metric_to_cache(name, unit, dimension_names, metric_type)
    values = {"ModelName": context.model_name, "Level": "Model", **dimensions}
    metric.add_or_update(value, [values[d] for d in metric.dimension_names], request_id or "")


def _content_types(context, idx: int) -> dict[str, str]:
    """Each field's content type: TorchServe puts {"content-type": ...} under the field's name."""
    headers = context.get_all_request_header(idx)
    return {name: value.get("content-type", "") for name, value in headers.items() if isinstance(value, dict)}
