// Reaching each other through TURN: the server is given a real coturn's URL and shared secret
// (--turn-urls, --turn-secret), hands each browser its own time-limited credentials in /config,
// and two browsers that may use relayed candidates only (?ice=relay, iceTransportPolicy "relay")
// connect through the relay and draw together. Their people lists say "TURN", read from the
// connections' selected candidate pairs; each page's /config answer named that page's own peer
// in its TURN username; the secret never reaches a page or the server's log.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { screenshotAll } from '../lib/browser.mjs';
import { canvasBox, dragStroke, waitForStroke } from '../lib/canvas.mjs';
import { CANVAS, chooseSwatch, chooseTool, inRoom, join, peerIds, waitForPeers } from '../lib/drawmesh.mjs';
import { startCoturn } from '../lib/coturn.mjs';

const PREFIX = 'turn_relay';
const SECRET = 'e2e-turn-secret-value';
const TOKEN_TTL_SECS = 8;

/** Waits until every peer `user` lists is connected the way `link` says (data-link). */
async function waitForLinks(user, link) {
  await user.waitFor(
    (want) => {
      const items = [...document.querySelectorAll('#peers li[data-peer-id]')];
      return items.length > 0 && items.every((li) => li.dataset.link === want);
    },
    link,
    `every peer in #peers to be li[data-link="${link}"]`,
  );
}

test('two relay-only browsers draw together through coturn with their own credentials', { timeout: 120_000 }, async (t) => {
  const turn = await startCoturn(t, { secret: SECRET, name: PREFIX });
  // Short tokens, so the test also sees the credentials renewed with them.
  const args = ['--turn-urls', turn.url, '--turn-secret', SECRET, '--token-ttl', String(TOKEN_TTL_SECS)];
  await inRoom(t, { prefix: PREFIX, args }, async ({ server, room, browser, users }) => {
    const configs = { alice: [], bob: [] };
    const recordConfigs = (name) => async (page) => {
      page.on('response', async (res) => {
        if (new URL(res.url()).pathname === '/api/config') configs[name].push(await res.json());
      });
    };
    const alice = await join(t, browser, room, 'alice', { prefix: PREFIX, users, query: 'ice=relay', beforeLoad: recordConfigs('alice') });
    const bob = await join(t, browser, room, 'bob', { prefix: PREFIX, users, query: 'ice=relay', beforeLoad: recordConfigs('bob') });
    await waitForPeers(alice, 1);
    await waitForPeers(bob, 1);
    await waitForLinks(alice, 'relayed');
    await waitForLinks(bob, 'relayed');
    const badge = await alice.page.$eval('#peers li[data-peer-id] .peer-link', (el) => el.textContent);
    assert.equal(badge, 'TURN');

    await chooseTool(alice, 'pen');
    await chooseSwatch(alice, '#1971c2');
    const box = await canvasBox(alice.page, CANVAS);
    const y = Math.round(box.height * 0.4);
    await dragStroke(alice.page, [{ x: 120, y }, { x: 520, y }], { selector: CANVAS });
    await waitForStroke(bob, { selector: CANVAS, points: [200, 300, 400].map((x) => ({ x, y })), color: '#1971c2' });
    await screenshotAll(users, `${PREFIX}-ok`);

    // Each page got its own credentials for our coturn, named `<expiry>:<its peer id>`.
    const [bobId] = await peerIds(alice);
    const [aliceId] = await peerIds(bob);
    for (const [name, id] of [['alice', aliceId], ['bob', bobId]]) {
      const turnServers = configs[name].flatMap((c) => c.iceServers).filter((s) => s.urls.includes(turn.url));
      assert.ok(turnServers.length > 0, `${name} got the TURN server: ${JSON.stringify(configs[name])}`);
      for (const server of turnServers) {
        assert.match(server.username, new RegExp(`^\\d+:${id}$`));
        assert.ok(server.credential.length > 0);
      }
    }
    // Renewed with the token: after the first refresh, a new /config with credentials that
    // expire later, for the same peer.
    const expiry = (config) => Number(config.iceServers.find((s) => s.urls.includes(turn.url)).username.split(':')[0]);
    const deadline = Date.now() + (TOKEN_TTL_SECS + 10) * 1000;
    while (configs.alice.length < 2 && Date.now() < deadline) {
      await alice.page.waitForResponse((res) => new URL(res.url()).pathname === '/api/config', { timeout: deadline - Date.now() });
    }
    assert.ok(configs.alice.length >= 2, 'alice fetched /config again after renewing her token');
    assert.ok(expiry(configs.alice[1]) > expiry(configs.alice[0]), 'the renewed credentials last longer');

    // The secret stays on the server.
    assert.ok(!server.log().includes(SECRET), 'the TURN secret is not in the server log');
    for (const user of users) {
      const html = await user.page.content();
      assert.ok(!html.includes(SECRET));
      assert.ok(!user.consoleLines.some((l) => l.includes(SECRET)));
      user.assertHealthy();
    }
  });
});
