// Many servers, one app: two server processes share rooms through one Redis, behind nginx
// (deploy/nginx/drawmesh.conf, round robin, no stickiness), so each browser's stream, joins and
// relays land on either process. Three browsers of our client draw together through them, and
// so do two browsers of the tutorial's own JavaScript client.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openUser, screenshotAll, launchBrowser } from '../lib/browser.mjs';
import { dragStroke, waitForStroke } from '../lib/canvas.mjs';
import { CANVAS, chooseSwatch, chooseTool, join, waitForPeers } from '../lib/drawmesh.mjs';
import { startNginx } from '../lib/nginx.mjs';
import { startRedis } from '../lib/redis.mjs';
import { newRoomUrl, startServer } from '../lib/server.mjs';

const PREFIX = 'multi_process';
const SECRET = 'e2e-multi-process-secret';

/** Two processes on one Redis behind nginx; returns the balancer's URL and the servers. */
async function cluster(t, name, { dist } = {}) {
  const redis = await startRedis(t);
  const args = ['--redis-url', redis.url, '--token-secret', SECRET];
  const servers = [
    await startServer(t, { name: `${name}-1`, args, dist }),
    await startServer(t, { name: `${name}-2`, args, dist }),
  ];
  const upstreams = servers.map((s) => new URL(s.url).host);
  const lb = await startNginx(t, upstreams, { name: `${name}-nginx` });
  return { lb, servers };
}

/** How many requests of `kind` (a log phrase) each server logged. */
function served(servers, phrase) {
  return servers.map((s) => s.log().split('\n').filter((l) => l.includes(phrase)).length);
}

test('three browsers draw together through two processes behind nginx', { timeout: 120_000 }, async (t) => {
  const { lb, servers } = await cluster(t, PREFIX);
  const room = await newRoomUrl(lb.url);
  const browser = await launchBrowser(t);
  const users = [];
  try {
    for (const name of ['alice', 'bob', 'carol']) users.push(await join(t, browser, room, name, { prefix: PREFIX }));
    for (const user of users) await waitForPeers(user, 2);
    const colors = { alice: '#e03131', bob: '#2f9e44', carol: '#1971c2' };
    for (const [i, user] of users.entries()) {
      await chooseTool(user, 'pen');
      await chooseSwatch(user, colors[user.name]);
      const y = 100 + 80 * i;
      await dragStroke(user.page, [{ x: 100, y }, { x: 500, y }], { selector: CANVAS });
    }
    for (const user of users) {
      for (const [i, other] of users.entries()) {
        const y = 100 + 80 * i;
        await waitForStroke(user, { selector: CANVAS, points: [200, 300, 400].map((x) => ({ x, y })), color: colors[other.name] });
      }
    }
    // Both processes took part: streams and joins on each.
    const streams = served(servers, 'stream opened');
    const joins = served(servers, 'joined');
    assert.ok(streams.every((n) => n > 0) || joins.every((n) => n > 0), `both processes served: streams ${streams}, joins ${joins}`);
    assert.equal(streams[0] + streams[1] >= 3, true);
    for (const user of users) user.assertHealthy();
    await screenshotAll(users, `${PREFIX}-ok`);
  } catch (err) {
    await screenshotAll(users, PREFIX);
    throw err;
  }
});

// The tutorial's client relays its offer and candidates in concurrent POSTs and adds candidates
// before the remote description; the one error that race causes is tolerated (see
// tutorial_client.test.mjs).
const TUTORIAL_RACE = /^InvalidStateError: Failed to execute 'addIceCandidate' on 'RTCPeerConnection': The remote description was null/;

test('the tutorial client works through two processes behind nginx', { timeout: 120_000 }, async (t) => {
  const name = `${PREFIX}-tutorial`;
  const { lb } = await cluster(t, name, { dist: 'e2e/fixtures/tutorial-client' });
  const room = await newRoomUrl(lb.url);
  const browser = await launchBrowser(t);
  const users = [];
  try {
    for (const who of ['first', 'second']) {
      users.push(await openUser(t, browser, room, { name: who, logPrefix: name, tolerate: [TUTORIAL_RACE] }));
    }
    for (const user of users) {
      await user.waitFor(
        () =>
          typeof context !== 'undefined' &&
          context.channels &&
          Object.values(context.channels).length === 1 &&
          Object.values(context.channels).every((c) => c.readyState === 'open'),
        null,
        'one open data channel',
      );
    }
    const [first, second] = users;
    await second.page.evaluate(() => {
      window.__received = [];
      const original = onPeerData;
      onPeerData = function (id, data) {
        window.__received.push(data);
        return original(id, data);
      };
    });
    const message = { lastPoint: { x: 40, y: 60 }, x: 300, y: 60, force: 1, color: '#ff0000' };
    await first.page.evaluate((m) => broadcast(JSON.stringify(m)), message);
    const received = await second.waitFor(() => window.__received.length > 0 && window.__received, null, 'the broadcast message');
    assert.deepEqual(JSON.parse(received[0]), message);
    for (const user of users) user.assertHealthy();
  } catch (err) {
    await screenshotAll(users, name);
    throw err;
  }
});
