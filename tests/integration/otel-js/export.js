// export.js: the OpenTelemetry JavaScript SDK exporting one batch of metrics to an OTLP endpoint,
// as an instrumented Node service would. Run by tests/integration/test_otlp_http.py:
//   node export.js <url of /v1/metrics> <json|protobuf>     (OTLP/HTTP)
//   node export.js http://<host>:<grpc port> grpc          (OTLP/gRPC, plaintext)
// A third argument "delta" asks for delta temporality (sums and histograms), which Strata refuses
// point by point with a partial success; the SDK logs its message as a warning on stderr.
// A counter, a gauge and a histogram with known values, cumulative temporality (the SDK's
// default), one forced flush; exits non-zero when the export fails, so the test sees the reason.
'use strict';

const { diag, DiagConsoleLogger, DiagLogLevel } = require('@opentelemetry/api');
const { MeterProvider, PeriodicExportingMetricReader } = require('@opentelemetry/sdk-metrics');
const { resourceFromAttributes } = require('@opentelemetry/resources');

async function main() {
  const [url, protocol, temporality] = process.argv.slice(2);
  if (!url || !['json', 'protobuf', 'grpc'].includes(protocol)) {
    console.error('usage: node export.js <url> <json|protobuf|grpc>');
    process.exit(2);
  }
  // Partial-success warnings from the exporter end up on stderr, which the test prints on failure.
  diag.setLogger(new DiagConsoleLogger(), DiagLogLevel.WARN);
  const packages = {
    json: '@opentelemetry/exporter-metrics-otlp-http',
    protobuf: '@opentelemetry/exporter-metrics-otlp-proto',
    grpc: '@opentelemetry/exporter-metrics-otlp-grpc',
  };
  const { OTLPMetricExporter } = require(packages[protocol]);
  // For gRPC an http:// URL makes the exporter use plaintext credentials, which Strata serves.
  const options = { url };
  if (temporality === 'delta') {
    const { AggregationTemporalityPreference } = require('@opentelemetry/exporter-metrics-otlp-http');
    options.temporalityPreference = AggregationTemporalityPreference.DELTA;
  }
  const exporter = new OTLPMetricExporter(options);
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3600000 });
  const provider = new MeterProvider({
    resource: resourceFromAttributes({
      'service.name': `otel-js-${protocol}${temporality === 'delta' ? '-delta' : ''}`,
      'service.namespace': 'strata-test',
      'service.instance.id': 'node-1',
      'deployment.environment.name': 'integration',
    }),
    readers: [reader],
  });
  const meter = provider.getMeter('strata-integration', '1.0.0');

  const orders = meter.createCounter('orders.processed');
  orders.add(3, { kind: 'online' });
  orders.add(4, { kind: 'online' });

  const items = meter.createGauge('cart.items', { unit: '{item}' });
  items.record(3);

  const duration = meter.createHistogram('checkout.duration', {
    unit: 'ms',
    advice: { explicitBucketBoundaries: [10, 100, 1000] },
  });
  for (const v of [5, 20, 120, 900]) duration.record(v);

  await reader.forceFlush(); // rejects when the export fails
  await provider.shutdown();
}

main().catch((e) => {
  console.error(`export failed: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
