// The `jshello` thub plugin, in JavaScript (componentize-js against thub's WIT, world `plugin`).
//
// Routes under /plugins/jshello: GET /hello (logged-in callers; counts greetings in kv, greeting
// text from config), GET /ping (no host calls), GET /stats (registrations seen), GET /misbehave/<how> (containment tests).
// Events: user.registered is counted and answered with `plugin.jshello.seen`.

import * as kv from 'thub:plugin/kv@0.2.0';
import * as config from 'thub:plugin/config@0.2.0';
import * as hub from 'thub:plugin/hub@0.2.0';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function answer(status, text, type = 'text/plain; charset=utf-8') {
  return { status, headers: [{ name: 'content-type', value: type }], body: encoder.encode(text) };
}

function counter(key) {
  const stored = kv.get(key);
  return stored === undefined ? 0 : Number(decoder.decode(stored));
}

function bump(key) {
  const count = counter(key) + 1;
  kv.set(key, encoder.encode(String(count)));
  return count;
}

export const hooks = {
  handleRequest(request) {
    if (request.method !== 'GET') {
      return answer(405, 'GET only');
    }
    if (request.path === '/hello') {
      const count = bump('greetings');
      const greeting = config.get('greeting') ?? 'hello';
      const who = request.principal.username ?? 'stranger';
      return answer(200, `${greeting}, ${who} (greeting #${count})`);
    }
    if (request.path === '/ping') {
      return answer(200, 'pong');
    }
    if (request.path === '/stats') {
      return answer(200, JSON.stringify({ 'user.registered': counter('seen:user.registered') }), 'application/json');
    }
    if (request.path === '/misbehave/loop') {
      for (;;) {}
    }
    if (request.path === '/misbehave/throw') {
      throw new Error('this plugin throws on purpose');
    }
    return answer(404, 'no such page');
  },
  onRequest(_request) {
    return { tag: 'continue' };
  },
  onResponse(_request, _response) {
    return [];
  },
  onEvent(event) {
    bump(`seen:${event.kind}`);
    hub.emit('seen', JSON.stringify({ kind: event.kind, id: event.id }));
  },
  runTask(name) {
    throw `no task ${name}`;
  },
};
