// The official TypeScript SDKs through the gateway: every SDK (openai,
// @anthropic-ai/sdk, @google/genai) against every provider kind (openai,
// openai-compatible, anthropic, gemini), plain, streamed and with a tool-call
// round trip. Run by e2e/tests/test_clients.py against a gateway it started
// (AIGW_BASE, AIGW_KEY, and AIGW_MODELS: {kind: model routed to that kind});
// that test then checks one trace per call with the mock's exact usage.
//
// What the mock answers (e2e/src/tokens.rs): "mock reply: <last user text>";
// with tools, a call of the first tool with its required arguments filled
// ({"city": "Paris"}); after a tool result, "mock reply: tool said <result>".

import { test } from 'node:test';
import assert from 'node:assert/strict';

import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { GoogleGenAI } from '@google/genai';

const BASE = process.env.AIGW_BASE;
const KEY = process.env.AIGW_KEY;
const MODELS = JSON.parse(process.env.AIGW_MODELS ?? '{}');
assert.ok(BASE && KEY && Object.keys(MODELS).length, 'AIGW_BASE, AIGW_KEY and AIGW_MODELS are required');

const QUESTION = 'What is the weather in Paris?';
const TOOL_RESULT = 'Sunny, 21 C';
const REPLY = `mock reply: ${QUESTION}`;
const TOOL_REPLY = `mock reply: tool said ${TOOL_RESULT}`;
const SCHEMA = {
  type: 'object',
  properties: { city: { type: 'string', description: 'A city.' } },
  required: ['city'],
};
const DESCRIPTION = 'The current weather in a city.';

// No retries: a test must see what one call does.
const openai = new OpenAI({ baseURL: `${BASE}/v1`, apiKey: KEY, maxRetries: 0, timeout: 30_000 });
const anthropic = new Anthropic({ baseURL: BASE, apiKey: KEY, maxRetries: 0, timeout: 30_000 });
const genai = new GoogleGenAI({ apiKey: KEY, httpOptions: { baseUrl: BASE, timeout: 30_000 } });

for (const [kind, model] of Object.entries(MODELS)) {
  // ------------------------------------------------------------------ openai
  test(`openai chat → ${kind}: plain`, async () => {
    const r = await openai.chat.completions.create({ model, messages: [{ role: 'user', content: QUESTION }] });
    assert.equal(r.choices[0].message.content, REPLY);
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.ok(r.usage.prompt_tokens > 0 && r.usage.completion_tokens === REPLY.split(' ').length);
  });

  test(`openai chat → ${kind}: streaming`, async () => {
    const stream = await openai.chat.completions.create({
      model, stream: true, stream_options: { include_usage: true },
      messages: [{ role: 'user', content: QUESTION }],
    });
    let text = '';
    let usage = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(text, REPLY);
    assert.equal(usage?.completion_tokens, REPLY.split(' ').length);
  });

  test(`openai chat → ${kind}: tools`, async () => {
    const tools = [{ type: 'function', function: { name: 'get_weather', description: DESCRIPTION, parameters: SCHEMA } }];
    const messages = [{ role: 'user', content: QUESTION }];
    const first = await openai.chat.completions.create({ model, messages, tools });
    const call = first.choices[0].message.tool_calls?.[0];
    assert.equal(first.choices[0].finish_reason, 'tool_calls');
    assert.equal(call?.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris' });
    messages.push(first.choices[0].message, { role: 'tool', tool_call_id: call.id, content: TOOL_RESULT });
    const second = await openai.chat.completions.create({ model, messages, tools });
    assert.equal(second.choices[0].message.content, TOOL_REPLY);
  });

  test(`openai responses → ${kind}: plain, streaming, tools`, async () => {
    const r = await openai.responses.create({ model, input: QUESTION });
    assert.equal(r.output_text, REPLY);
    const stream = await openai.responses.create({ model, input: QUESTION, stream: true });
    let text = '';
    let done = null;
    for await (const ev of stream) {
      if (ev.type === 'response.output_text.delta') text += ev.delta;
      if (ev.type === 'response.completed') done = ev.response;
    }
    assert.equal(text, REPLY);
    assert.equal(done?.usage?.output_tokens, REPLY.split(' ').length);
    const tools = [{ type: 'function', name: 'get_weather', description: DESCRIPTION, parameters: SCHEMA, strict: false }];
    const first = await openai.responses.create({ model, input: QUESTION, tools });
    const call = first.output.find((o) => o.type === 'function_call');
    assert.equal(call?.name, 'get_weather');
    const second = await openai.responses.create({
      model, tools,
      input: [
        { role: 'user', content: QUESTION },
        { type: 'function_call', call_id: call.call_id, name: call.name, arguments: call.arguments },
        { type: 'function_call_output', call_id: call.call_id, output: TOOL_RESULT },
      ],
    });
    assert.equal(second.output_text, TOOL_REPLY);
  });

  // --------------------------------------------------------------- anthropic
  test(`anthropic → ${kind}: plain`, async () => {
    const r = await anthropic.messages.create({ model, max_tokens: 100, messages: [{ role: 'user', content: QUESTION }] });
    assert.equal(r.content[0].type, 'text');
    assert.equal(r.content[0].text, REPLY);
    assert.equal(r.stop_reason, 'end_turn');
  });

  test(`anthropic → ${kind}: streaming`, async () => {
    const stream = anthropic.messages.stream({ model, max_tokens: 100, messages: [{ role: 'user', content: QUESTION }] });
    let text = '';
    stream.on('text', (t) => { text += t; });
    const final = await stream.finalMessage();
    assert.equal(text, REPLY);
    assert.equal(final.usage.output_tokens, REPLY.split(' ').length);
  });

  test(`anthropic → ${kind}: tools`, async () => {
    const tools = [{ name: 'get_weather', description: DESCRIPTION, input_schema: SCHEMA }];
    const messages = [{ role: 'user', content: QUESTION }];
    const first = await anthropic.messages.create({ model, max_tokens: 100, messages, tools });
    const use = first.content.find((b) => b.type === 'tool_use');
    assert.equal(first.stop_reason, 'tool_use');
    assert.equal(use?.name, 'get_weather');
    assert.deepEqual(use.input, { city: 'Paris' });
    messages.push({ role: 'assistant', content: first.content });
    messages.push({ role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: TOOL_RESULT }] });
    const second = await anthropic.messages.create({ model, max_tokens: 100, messages, tools });
    assert.equal(second.content[0].text, TOOL_REPLY);
  });

  // ------------------------------------------------------------------ gemini
  test(`google-genai → ${kind}: plain`, async () => {
    const r = await genai.models.generateContent({ model, contents: QUESTION });
    assert.equal(r.text, REPLY);
    assert.equal(r.usageMetadata?.candidatesTokenCount, REPLY.split(' ').length);
  });

  test(`google-genai → ${kind}: streaming`, async () => {
    const stream = await genai.models.generateContentStream({ model, contents: QUESTION });
    let text = '';
    for await (const chunk of stream) text += chunk.text ?? '';
    assert.equal(text, REPLY);
  });

  test(`google-genai → ${kind}: tools`, async () => {
    const config = { tools: [{ functionDeclarations: [{ name: 'get_weather', description: DESCRIPTION, parametersJsonSchema: SCHEMA }] }] };
    const contents = [{ role: 'user', parts: [{ text: QUESTION }] }];
    const first = await genai.models.generateContent({ model, contents, config });
    const call = first.functionCalls?.[0];
    assert.equal(call?.name, 'get_weather');
    assert.deepEqual(call.args, { city: 'Paris' });
    contents.push(first.candidates[0].content);
    contents.push({ role: 'user', parts: [{ functionResponse: { id: call.id, name: call.name, response: { output: TOOL_RESULT } } }] });
    const second = await genai.models.generateContent({ model, contents, config });
    assert.equal(second.text, TOOL_REPLY);
  });
}
