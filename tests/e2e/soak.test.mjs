// soak.test.mjs — the 60-second soak inside `make test` (SOAK_SECONDS overrides; `make soak`
// runs 600): mixed traffic at twice the measured capacity with clients dropping streams,
// malformed requests and slow readers (soak.mjs). Zero crashes, every request answered
// (200/4xx/429/503), no request or KV block left at idle, RSS growth under 5%.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sharedMissing } from './server.mjs';
import { soak } from './soak.mjs';

const seconds = Number(process.env.SOAK_SECONDS || 60);

describe('soak', { skip: sharedMissing && 'no ../shared data' }, () => {
  it(`${seconds} s of mixed traffic at 2x capacity`, { timeout: (seconds + 240) * 1000 }, async () => {
    const report = await soak({ seconds, factor: 2 });
    const { trace, unexpected, ...summary } = report;
    assert.deepEqual(report.failures, [], JSON.stringify({ summary, unexpected }, null, 1));
    assert.ok(report.requests > seconds, `only ${report.requests} requests`);
    assert.ok(report.statuses['200'] > 0 && report.statuses.aborted > 0);
  });
});
