// Signing without a secure context. A LAN server is reached over plain HTTP at a name or address
// that is not localhost, where browsers offer no `crypto.subtle`; the app signs with its own
// Ed25519 (in the wasm) and `crypto.getRandomValues`, which every page has. Here the server is
// reached as http://drawmesh.lan:<port> (Chromium maps the name to 127.0.0.1), which Chromium
// does not count as secure: alice and bob draw together, alice leaves, and carol, joining after,
// gets alice's strokes from bob, which she takes only because alice's signatures check.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { launchBrowser, screenshotAll } from '../lib/browser.mjs';
import { dragStroke } from '../lib/canvas.mjs';
import { CANVAS, join, waitForElements, waitForPeers } from '../lib/drawmesh.mjs';
import { newRoomUrl, startServer } from '../lib/server.mjs';

const PREFIX = 'insecure_context';
const HOST = 'drawmesh.lan';

test('in a page that is not a secure context, peers still sign and a late joiner checks what a third peer hands on', { timeout: 120_000 }, async (t) => {
  const server = await startServer(t, { name: PREFIX });
  const local = new URL(await newRoomUrl(server.url));
  const room = `http://${HOST}:${local.port}${local.pathname}`;
  const browser = await launchBrowser(t, { args: [`--host-resolver-rules=MAP ${HOST} 127.0.0.1`] });
  const users = [];
  try {
    const alice = await join(t, browser, room, 'alice', { prefix: PREFIX, users });
    const context = await alice.page.evaluate(() => ({
      secure: window.isSecureContext,
      subtle: typeof crypto.subtle,
      origin: location.origin,
    }));
    assert.deepEqual(
      context,
      { secure: false, subtle: 'undefined', origin: `http://${HOST}:${local.port}` },
      'the page is not a secure context',
    );
    const bob = await join(t, browser, room, 'bob', { prefix: PREFIX, users });
    await waitForPeers(alice, 1);
    await waitForPeers(bob, 1);
    await dragStroke(alice.page, [{ x: 40, y: 60 }, { x: 300, y: 80 }], { selector: CANVAS });
    await dragStroke(alice.page, [{ x: 40, y: 200 }, { x: 300, y: 220 }], { selector: CANVAS });
    await dragStroke(bob.page, [{ x: 40, y: 320 }, { x: 300, y: 340 }], { selector: CANVAS });
    await waitForElements(alice, 3);
    await waitForElements(bob, 3);

    // Alice leaves; her strokes now reach newcomers only through bob.
    await alice.close();
    await waitForPeers(bob, 0);
    const carol = await join(t, browser, room, 'carol', { prefix: PREFIX, users });
    await waitForPeers(carol, 1);
    await waitForElements(carol, 3);
    const refused = carol.consoleLines.filter((line) => /dropped|refused/.test(line));
    assert.deepEqual(refused, [], 'carol refused nothing');
    await screenshotAll(users.filter((u) => !u.closed), PREFIX);
  } catch (err) {
    await screenshotAll(users.filter((u) => !u.closed), PREFIX);
    throw err;
  }
});
