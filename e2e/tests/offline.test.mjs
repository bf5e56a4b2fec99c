// Offline drawing: a browser that loses every connection (the server and its peers) keeps
// drawing, and when it is back its work merges with what the others drew meanwhile.
//
// carol reaches the server only through a proxy the test cuts, and her peers only through a TURN
// relay (?ice=relay) the test stops: together, a real loss of every connection (Playwright's
// offline mode cuts neither, see lib/proxy.mjs). alice and bob stay connected to each other and
// to the server. While carol is away, all three draw; once the proxy and the relay are back,
// everybody's canvas shows all three strokes, the drawings agree, and nobody is listed twice.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { screenshotAll } from '../lib/browser.mjs';
import { dragStroke, waitForStroke } from '../lib/canvas.mjs';
import { startCoturn } from '../lib/coturn.mjs';
import {
  CANVAS,
  chooseSwatch,
  chooseTool,
  elementCount,
  inRoom,
  join,
  peerIds,
  waitForElements,
  waitForPeers,
} from '../lib/drawmesh.mjs';
import { startProxy } from '../lib/proxy.mjs';

const PREFIX = 'offline';
const SECRET = 'e2e-offline-turn-secret';
/** Long enough for a stream reconnect, a rejoin and a fresh negotiation through the relay. */
const BACK_MS = 45_000;

const STROKES = {
  carol: { color: '#e03131', y: 120 },
  alice: { color: '#2f9e44', y: 200 },
  bob: { color: '#1971c2', y: 280 },
};

async function draw(user) {
  const { color, y } = STROKES[user.name];
  await chooseTool(user, 'pen');
  await chooseSwatch(user, color);
  await dragStroke(user.page, [{ x: 100, y }, { x: 500, y }], { selector: CANVAS });
}

async function shows(user, name, timeout) {
  const { color, y } = STROKES[name];
  const points = [200, 300, 400].map((x) => ({ x, y }));
  await waitForStroke(user, { selector: CANVAS, points, color, timeout });
}

async function status(user) {
  return user.page.evaluate(() => document.querySelector('#status')?.dataset.state);
}

test('a browser cut off from the server and its peers keeps drawing and merges when back', { timeout: 150_000 }, async (t) => {
  const turn = await startCoturn(t, { secret: SECRET, name: PREFIX });
  const args = ['--turn-urls', turn.url, '--turn-secret', SECRET];
  await inRoom(t, { prefix: PREFIX, args }, async ({ server, room, browser, users }) => {
    const proxy = await startProxy(t, new URL(server.url).port);
    const roomViaProxy = new URL(new URL(room).pathname, proxy.url).href;
    const alice = await join(t, browser, room, 'alice', { prefix: PREFIX, users });
    const bob = await join(t, browser, room, 'bob', { prefix: PREFIX, users });
    const carol = await join(t, browser, roomViaProxy, 'carol', { prefix: PREFIX, users, query: 'ice=relay' });
    for (const user of users) await waitForPeers(user, 2);

    // Cut carol off from everything.
    proxy.cut();
    await turn.stop();
    await carol.waitFor(
      () => document.querySelector('#status')?.dataset.state === 'offline',
      null,
      'carol: #status[data-state="offline"]',
    );
    // Her stream broke, so the server tells the others she left.
    await waitForPeers(alice, 1);
    await waitForPeers(bob, 1);

    // Everyone draws while she is away; her strokes stay on her screen.
    await draw(carol);
    await draw(alice);
    await draw(bob);
    await shows(carol, 'carol');
    await shows(bob, 'alice');
    await shows(alice, 'bob');
    assert.equal(await status(carol), 'offline', 'carol drew while offline');
    // Her peers go too (silence, failed ICE): none of them can be reached.
    await waitForPeers(carol, 0, BACK_MS);

    // Back: the relay and the server path return.
    await turn.restart();
    proxy.restore();
    for (const user of users) await waitForPeers(user, 2, BACK_MS);
    for (const user of users) {
      for (const name of Object.keys(STROKES)) await shows(user, name, BACK_MS);
    }
    // Same drawing everywhere, and nobody twice.
    const count = await elementCount(alice);
    for (const user of users) {
      await waitForElements(user, count);
      const ids = await peerIds(user);
      assert.equal(new Set(ids).size, 2, `${user.name} lists two distinct peers: ${ids}`);
    }
    await screenshotAll(users, `${PREFIX}-merged`);
    for (const user of users) user.assertHealthy();
  });
});
