// The request log's filters, changed faster than the page is drawn: by
// keyboard, a client key typed and, at once, a model typed key by key as
// fast as the browser takes keys; then two filters filled one right after
// the other. The address keeps every filter, each field what was typed,
// and the rows listed are those matching them all (one of the three
// requests test_ui.py made: key app with MODEL; app with gpt-4o and other
// with MODEL match one filter each). A reload, and Back from a request's
// detail, keep them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { env, eventually, input, launch, nav, onFailure, signIn } from '../lib.mjs';

test("the request log's filters set quickly keep each other", { timeout: 120_000 }, async () => {
  const b = await launch();
  const { page } = b;
  const model = env('MODEL');
  const both = env('BOTH_REQUEST_ID');
  const all = JSON.parse(env('ALL_REQUEST_IDS'));
  /** The request ids listed, in order. */
  const listed = () => page.getByTestId('request-id').evaluateAll((els) => els.map((e) => e.getAttribute('title')));
  const filters = () => Object.fromEntries(new URL(page.url()).searchParams);
  try {
    await signIn(page, env('ADMIN_USER'), env('ADMIN_PASSWORD'));
    const trace = (await (await page.request.get(`${env('ADMIN_URL')}/api/traces/${both}`)).json()).trace;
    await nav(page, 'Requests', 'Requests');
    await eventually(async () => assert.deepEqual(new Set(await listed()), new Set(all)), {
      what: 'the three requests are listed',
    });

    // -- by keyboard: a key name, then straight on to the model, typed
    // key by key with no pause.
    await input(page, 'Client key').click();
    await page.keyboard.type('app');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('id')),
      await input(page, 'Model').getAttribute('id'), 'Tab did not reach Model');
    await page.keyboard.type(model);
    await eventually(async () => assert.deepEqual(filters(), { client_key: 'app', model }), {
      what: 'the address holds both filters',
    });
    assert.equal(await input(page, 'Client key').inputValue(), 'app');
    assert.equal(await input(page, 'Model').inputValue(), model);
    await eventually(async () => assert.deepEqual(await listed(), [both]), {
      what: 'only the request of key app with the model is listed',
    });

    // -- two more filled one right after the other (neither narrows the
    // rows: the same provider and data plane served all three).
    await input(page, 'Provider').fill(trace.provider);
    await input(page, 'Data plane').fill(trace.node_id);
    const four = { client_key: 'app', model, provider: trace.provider, node_id: trace.node_id };
    await eventually(async () => assert.deepEqual(filters(), four), { what: 'the address holds all four filters' });
    for (const [label, value] of [['Client key', 'app'], ['Model', model], ['Provider', trace.provider], ['Data plane', trace.node_id]]) {
      assert.equal(await input(page, label).inputValue(), value, label);
    }
    await eventually(async () => assert.deepEqual(await listed(), [both]), { what: 'still the one request' });

    // -- a reload keeps them, and so does a request's detail, closed.
    await page.reload();
    await page.getByRole('heading', { level: 2, name: 'Requests' }).waitFor();
    assert.deepEqual(filters(), four);
    assert.equal(await input(page, 'Model').inputValue(), model);
    await eventually(async () => assert.deepEqual(await listed(), [both]), { what: 'the one request after a reload' });
    await page.getByRole('row', { name: /app/ }).last().click();
    await page.getByRole('dialog').getByText(`Request ${both}`).waitFor();
    assert.deepEqual(filters(), four);
    await page.keyboard.press('Escape');
    await page.waitForURL((u) => u.pathname === '/requests');
    assert.deepEqual(filters(), four);

    // -- emptied key by key, quickly: the other filters stay, and the
    // rows are those of the model again (both keys).
    await input(page, 'Client key').click();
    await page.keyboard.press('End');
    for (let i = 0; i < 3; i++) await page.keyboard.press('Backspace');
    await eventually(async () => assert.deepEqual(filters(), { model, provider: trace.provider, node_id: trace.node_id }), {
      what: 'the key filter is gone, the others kept',
    });
    const withModel = all.filter((id) => id !== env('OTHER_MODEL_REQUEST_ID'));
    await eventually(async () => assert.deepEqual(new Set(await listed()), new Set(withModel)), {
      what: "the model's requests, of both keys",
    });
    assert.deepEqual(b.errors, [], 'errors in the page');
  } catch (e) {
    await onFailure(page, 'requests');
    throw e;
  } finally {
    await b.close();
  }
});
