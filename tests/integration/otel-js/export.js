// export.js: the OpenTelemetry JavaScript SDK exporting one batch of metrics to an OTLP/HTTP
// endpoint, as an instrumented Node service would. Run by tests/integration/test_otlp_http.py:
//   node export.js <url of /v1/metrics> <json|protobuf>
// A counter, a gauge and a histogram with known values, cumulative temporality (the SDK's
// default), one forced flush; exits non-zero when the export fails, so the test sees the reason.
'use strict';

const { diag, DiagConsoleLogger, DiagLogLevel } = require('@opentelemetry/api');
const { MeterProvider, PeriodicExportingMetricReader } = require('@opentelemetry/sdk-metrics');
const { resourceFromAttributes } = require('@opentelemetry/resources');

async function main() {
  const [url, protocol] = process.argv.slice(2);
  if (!url || !['json', 'protobuf'].includes(protocol)) {
    console.error('usage: node export.js <url> <json|protobuf>');
    process.exit(2);
  }
  // Partial-success warnings from the exporter end up on stderr, which the test prints on failure.
  diag.setLogger(new DiagConsoleLogger(), DiagLogLevel.WARN);
  const { OTLPMetricExporter } = protocol === 'protobuf'
    ? require('@opentelemetry/exporter-metrics-otlp-proto')
    : require('@opentelemetry/exporter-metrics-otlp-http');
  const exporter = new OTLPMetricExporter({ url });
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3600000 });
  const provider = new MeterProvider({
    resource: resourceFromAttributes({
      'service.name': `otel-js-${protocol}`,
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
