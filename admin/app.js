/*
 * The bridge's admin page: a login form, then one page with hash routes
 * (#/, #/conversations, #/conversations/12, #/identities, #/dead-letters).
 * It reads the JSON API under /admin/api/ and re-reads what it shows when the
 * WebSocket /admin/ws says something changed (no polling).
 *
 * Everything a visitor or the tracker wrote reaches the DOM as text
 * (textContent, text nodes): this file never assigns innerHTML. The CSP allows
 * no inline script or style, so nothing here sets a style attribute either.
 */
'use strict';

(function () {
  // ---- DOM ----------------------------------------------------------------

  const $ = (id) => document.getElementById(id);

  /* A link target from data: only the page's own routes and http(s) URLs. */
  function safeHref(url) {
    if (typeof url !== 'string' || url === '') return null;
    if (url.startsWith('#/')) return url;
    try {
      const u = new URL(url, location.href);
      return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
    } catch (e) {
      return null;
    }
  }

  /*
   * el('a', {href: '#/', class: 'x'}, 'text', child, [more]): strings become
   * text nodes; null, undefined and false are left out.
   */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'href') {
        const h = safeHref(v);
        if (h) node.setAttribute('href', h);
      } else if (k === 'on') {
        for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
      } else if (v === true) {
        node.setAttribute(k, '');
      } else {
        node.setAttribute(k, String(v));
      }
    }
    append(node, children);
    return node;
  }

  function append(node, children) {
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      if (Array.isArray(c)) append(node, c);
      else if (c instanceof Node) node.appendChild(c);
      else node.appendChild(document.createTextNode(String(c)));
    }
    return node;
  }

  function replace(node, ...children) {
    node.replaceChildren();
    return append(node, children);
  }

  /* "a, b and c" as nodes or text, for short lists. */
  function joined(items, sep) {
    const out = [];
    items.forEach((it, i) => {
      if (i > 0) out.push(sep || ', ');
      out.push(it);
    });
    return out;
  }

  // ---- words for states (never a colour alone) ----------------------------

  /* state -> [icon, words, css class]; the icon is decoration, the words are the state. */
  const STATES = {
    upstream: {
      ok: ['✓', 'working', 'good'],
      paused: ['‖', 'paused', 'warn'],
      failing: ['✗', 'failing', 'bad'],
    },
    conversation: {
      active: ['●', 'active', 'good'],
      merged: ['⇢', 'merged', 'muted'],
      closed: ['○', 'closed', 'muted'],
    },
    task: {
      pending: ['…', 'being created', 'warn'],
      open: ['●', 'open', 'good'],
      closing: ['…', 'being completed', 'warn'],
      closed: ['○', 'completed', 'muted'],
    },
    reply: {
      queued: ['…', 'waiting to be sent to the chat', 'warn'],
      running: ['↻', 'being sent to the chat', 'warn'],
      done: ['✓', 'delivered to the chat', 'good'],
      dead: ['✗', 'not delivered (dead letter)', 'bad'],
      discarded: ['⊘', 'not delivered (discarded)', 'muted'],
    },
    job: {
      queued: ['…', 'queued', 'warn'],
      running: ['↻', 'running', 'warn'],
      done: ['✓', 'done', 'good'],
      dead: ['✗', 'dead letter', 'bad'],
      discarded: ['⊘', 'discarded', 'muted'],
    },
  };

  function badge(kind, state, extra) {
    const s = (STATES[kind] || {})[state] || ['?', String(state), 'muted'];
    return el('span', {class: 'badge ' + s[2], 'data-state': state},
      el('span', {class: 'icon', 'aria-hidden': 'true'}, s[0]), ' ', s[1], extra ? ' ' + extra : null);
  }

  // ---- time ---------------------------------------------------------------

  function isTime(ms) {
    return typeof ms === 'number' && ms > 0;
  }

  function localTime(ms) {
    return new Date(ms).toLocaleString(undefined, {
      year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
    });
  }

  function plural(n, one, many) {
    return n + ' ' + (n === 1 ? one : many);
  }

  /* "3 min ago", "in 5 min", "just now". */
  function ago(ms) {
    const d = Math.round((Date.now() - ms) / 1000);
    const s = Math.abs(d);
    let words;
    if (s < 45) return d >= 0 ? 'just now' : 'in a moment';
    if (s < 59.5 * 60) words = Math.max(1, Math.round(s / 60)) + ' min';
    else if (s < 36 * 3600) words = Math.round(s / 3600) + ' h';
    else words = plural(Math.round(s / 86400), 'day', 'days');
    return d >= 0 ? words + ' ago' : 'in ' + words;
  }

  /* "2 d 3 h", "4 h 12 min", "35 s" for an uptime or a wait. */
  function duration(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    if (d > 0) return d + ' d ' + h + ' h';
    if (h > 0) return h + ' h ' + m + ' min';
    if (m > 0) return m + ' min';
    return s + ' s';
  }

  /* A <time> with the local time, and the age beside it (kept fresh by tickAges). */
  function when(ms, opts) {
    if (!isTime(ms)) return el('span', {class: 'muted'}, (opts && opts.none) || 'never');
    const rel = el('span', {class: 'age', 'data-at': ms}, ago(ms));
    if (opts && opts.short) {
      return el('time', {datetime: new Date(ms).toISOString(), title: localTime(ms)}, rel);
    }
    if (opts && opts.clock) {
      return el('time', {datetime: new Date(ms).toISOString(), title: localTime(ms)}, clock(ms), ' (', rel, ')');
    }
    return el('time', {datetime: new Date(ms).toISOString()}, localTime(ms), ' (', rel, ')');
  }

  function tickAges() {
    for (const n of document.querySelectorAll('.age[data-at]')) {
      n.textContent = ago(Number(n.getAttribute('data-at')));
    }
  }

  /* A time the API gives as ISO text ("2024-05-01T10:00:00Z") or ms. */
  function toMs(t) {
    if (typeof t === 'number') return t;
    const v = Date.parse(t);
    return Number.isNaN(v) ? 0 : v;
  }

  // ---- the API --------------------------------------------------------------

  const session = {csrf: null};

  class LoginRequired extends Error {}

  class HttpError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function request(method, path, body) {
    const headers = {Accept: 'application/json'};
    if (method !== 'GET' && session.csrf) headers['X-CSRF-Token'] = session.csrf;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let r;
    try {
      r = await fetch(path, {
        method, headers, credentials: 'same-origin', cache: 'no-store',
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new HttpError(0, 'the bridge does not answer');
    }
    let data = null;
    try {
      data = await r.json();
    } catch (e) {
      data = null;
    }
    if (r.status === 401) {
      showLogin();
      throw new LoginRequired('login required');
    }
    if (!r.ok) {
      const why = data && typeof data.error === 'string' ? data.error : 'HTTP ' + r.status;
      throw new HttpError(r.status, why);
    }
    return data;
  }

  const api = {
    get: (path) => request('GET', '/admin/api/' + path),
    post: (path) => request('POST', '/admin/api/' + path),
  };

  // ---- login and logout -----------------------------------------------------

  function showLogin(message) {
    live.stop();
    session.csrf = null;
    current.view = null;
    $('view').hidden = true;
    replace($('view'));
    $('nav').hidden = true;
    $('session').hidden = true;
    $('login').hidden = false;
    if (message !== undefined) loginError(message);
    document.title = 'Log in · chatra-bridge';
    $('token').focus();
  }

  /*
   * The login's error line. Without JavaScript the form posts itself and the bridge
   * answers this page with the line filled in (id login-error, where index.html says
   * BR_LOGIN_ERROR); with it, this function writes the same line.
   */
  function loginError(text) {
    let err = $('login-error');
    if (!err) {
      err = el('p', {id: 'login-error', class: 'login-error', role: 'alert'});
      $('login-form').prepend(err);
    }
    err.textContent = text || '';
    err.hidden = !text;
  }

  async function login(ev) {
    ev.preventDefault();
    const token = $('token').value;
    const button = ev.target.querySelector('button');
    let error;
    button.disabled = true;
    loginError('');
    try {
      const r = await fetch('/admin/login', {
        method: 'POST', credentials: 'same-origin', cache: 'no-store',
        headers: {'Content-Type': 'application/json', Accept: 'application/json'},
        body: JSON.stringify({token}),
      });
      if (r.ok) {
        const data = await r.json().catch(() => ({}));
        $('token').value = '';
        /* The page may have been served as /admin/login: the app's address is /admin/. */
        if (location.pathname !== '/admin/') history.replaceState(null, '', '/admin/' + location.hash);
        await startApp(data.csrf);
        return;
      }
      error = r.status === 401 ? 'Wrong token.'
        : r.status === 429 ? 'Too many wrong tokens from this address; wait a minute.'
          : 'Login failed (HTTP ' + r.status + ').';
    } catch (e) {
      error = 'The bridge does not answer.';
    } finally {
      button.disabled = false;
    }
    loginError(error);
    $('token').select();
  }

  async function logout() {
    try {
      await request('POST', '/admin/logout');
    } catch (e) {
      if (e instanceof LoginRequired) return;
    }
    showLogin('');
  }

  /* After a login, or at start with a session cookie: the app itself. */
  async function startApp(csrf) {
    if (!csrf) {
      try {
        csrf = (await api.get('session')).csrf;
      } catch (e) {
        if (!(e instanceof LoginRequired)) showLogin('Cannot reach the bridge: ' + e.message);
        return;
      }
    }
    session.csrf = csrf;
    $('login').hidden = true;
    $('nav').hidden = false;
    $('session').hidden = false;
    $('view').hidden = false;
    live.start();
    route();
    /* The overview and the dead letters count them as they load; elsewhere the menu asks. */
    if (!['overview', 'dead-letters'].includes(current.view && current.view.name)) refreshDeadCount();
  }

  // ---- the dead-letter count in the menu ------------------------------------

  async function refreshDeadCount(overview) {
    try {
      const o = overview || await api.get('overview');
      const n = o.dead_letters || 0;
      $('dead-count').textContent = n > 0 ? '(' + n + ')' : '';
    } catch (e) {
      /* The view in front shows errors; the count stays as it was. */
    }
  }

  // ---- routing --------------------------------------------------------------

  /* The view in front: {name, key, refresh(), wants(message)}. */
  const current = {view: null, loading: false, again: false, timer: null};

  function parseHash() {
    const h = location.hash.replace(/^#/, '') || '/';
    const q = h.indexOf('?');
    const path = q < 0 ? h : h.slice(0, q);
    const params = new URLSearchParams(q < 0 ? '' : h.slice(q + 1));
    return {path, params};
  }

  const ROUTES = [
    [/^\/$/, () => overviewView()],
    [/^\/conversations$/, (m, p) => conversationsView(p)],
    [/^\/conversations\/(\d+)$/, (m) => conversationView(Number(m[1]))],
    [/^\/identities$/, (m, p) => identitiesView(p)],
    [/^\/dead-letters$/, () => deadLettersView()],
  ];

  function route() {
    if (!session.csrf) return;
    const {path, params} = parseHash();
    let view = null;
    for (const [re, make] of ROUTES) {
      const m = re.exec(path);
      if (m) {
        view = make(m, params);
        break;
      }
    }
    if (!view) view = notFoundView(path);
    for (const a of document.querySelectorAll('#nav a')) {
      if (a.getAttribute('data-view') === view.name) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    current.view = view;
    document.title = view.title + ' · chatra-bridge';
    const container = $('view');
    replace(container, view.root);
    refresh();
  }

  /* Re-read the view in front; a request while one runs makes one more after it. */
  async function refresh() {
    const view = current.view;
    if (!view) return;
    if (current.loading) {
      current.again = true;
      return;
    }
    current.loading = true;
    try {
      await view.refresh();
      view.root.setAttribute('data-loaded', String(++view.loads));
      clearError(view);
    } catch (e) {
      if (!(e instanceof LoginRequired)) showError(view, e);
    } finally {
      current.loading = false;
    }
    /* Asked again meanwhile, for this view or for the one that took its place. */
    if (current.again) {
      current.again = false;
      refresh();
    }
  }

  /* Something changed: re-read soon, once for a burst of messages. */
  function refreshSoon() {
    if (current.timer) return;
    current.timer = setTimeout(() => {
      current.timer = null;
      refresh();
    }, 100);
  }

  // ---- views: common parts ----------------------------------------------------

  function makeView(name, title, build) {
    const status = el('p', {class: 'error', role: 'alert', hidden: true});
    const notice = el('p', {class: 'notice', role: 'status', hidden: true});
    const body = el('div', {class: 'view-body'});
    const heading = el('h1', {tabindex: '-1'}, title);
    const root = el('section', {class: 'view view-' + name, 'data-view': name}, heading, status, notice, body);
    const view = {name, title, root, heading, status, notice, body, loads: 0, wants: () => false};
    build(view);
    return view;
  }

  function showError(view, e) {
    view.status.textContent = 'Could not load this page: ' + e.message + '.';
    view.status.hidden = false;
  }

  function clearError(view) {
    view.status.hidden = true;
    view.status.textContent = '';
  }

  function say(view, text) {
    view.notice.textContent = text;
    view.notice.hidden = !text;
  }

  function notFoundView(path) {
    return makeView('not-found', 'Not found', (v) => {
      v.refresh = async () => replace(v.body, el('p', {}, 'There is no page ', el('code', {}, path), '. ',
        el('a', {href: '#/'}, 'To the overview')));
    });
  }

  /* A definition list of [label, value] pairs (a value may be a node). */
  function facts(pairs, cls) {
    const dl = el('dl', {class: 'facts' + (cls ? ' ' + cls : '')});
    for (const [k, v] of pairs) {
      if (v === undefined) continue;
      dl.appendChild(el('div', {class: 'fact'}, el('dt', {}, k), el('dd', {}, v === null ? '—' : v)));
    }
    return dl;
  }

  function convLink(id, text) {
    return el('a', {href: '#/conversations/' + Number(id)}, text || 'conversation ' + Number(id));
  }

  function taskRef(task) {
    if (!task) return el('span', {class: 'muted'}, 'no task');
    const label = task.id ? '#' + task.id : null;
    const link = !label ? null : safeHref(task.url)
      ? el('a', {href: task.url, target: '_blank', rel: 'noopener noreferrer', class: 'task-link'}, label)
      : el('span', {}, label);
    return el('span', {class: 'task'}, link, link && task.state ? ' ' : null,
      task.state ? badge('task', task.state) : null);
  }

  /* A search form that updates the route's q (and the list) as one types. */
  function searchForm(label, placeholder, value, onSearch) {
    const input = el('input', {type: 'search', name: 'q', id: 'search-q', placeholder, value: value || '',
      autocomplete: 'off', spellcheck: 'false'});
    let timer = null;
    input.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(() => onSearch(input.value.trim()), 300);
    });
    return el('form', {class: 'search', role: 'search', on: {submit: (ev) => {
      ev.preventDefault();
      clearTimeout(timer);
      onSearch(input.value.trim());
    }}}, el('label', {for: 'search-q'}, label), input, el('button', {type: 'submit'}, 'Search'));
  }

  function setRoute(hash) {
    /* The same view with new parameters: no hashchange (the view stays and keeps focus). */
    history.replaceState(null, '', hash);
  }

  /* A table that turns into labelled blocks on a phone (see app.css). */
  function table(cls, headers, rows) {
    return el('table', {class: 'list ' + cls},
      el('thead', {}, el('tr', {}, headers.map((h) => el('th', {scope: 'col'}, h)))),
      el('tbody', {}, rows));
  }

  function cell(label, ...content) {
    /* One child, so that the phone's label-and-value grid sees one value. */
    return el('td', {'data-label': label}, el('div', {class: 'cell'}, content));
  }

  // ---- Overview ---------------------------------------------------------------

  function overviewView() {
    return makeView('overview', 'Overview', (v) => {
      v.wants = (m) => m.type === 'overview' || m.type === 'dead_letters';
      v.refresh = async () => {
        const o = await api.get('overview');
        refreshDeadCount(o);
        replace(v.body,
          el('h2', {}, 'Upstreams'),
          el('div', {class: 'cards'}, (o.upstreams || []).map(upstreamCard)),
          el('h2', {}, 'Queues'),
          facts([
            ['Inbox (webhooks not yet applied)', queueText(o.inbox && o.inbox.pending, o.inbox && o.inbox.oldest_at)],
            ['Jobs', jobsText(o.jobs || {})],
            ['Dead letters', deadText(o.dead_letters || 0)],
          ], 'wide'),
          el('h2', {}, 'The bridge'),
          facts([
            ['Version', o.version || '—'],
            ['Up for', typeof o.uptime_s === 'number' ? duration(o.uptime_s) : '—'],
            ['Started', isTime(o.started_at) ? when(o.started_at) : '—'],
            ['Config file', o.config ? el('code', {class: 'path'}, o.config) : '—'],
          ], 'wide'));
      };
    });
  }

  function upstreamCard(u) {
    const q = u.quota || {};
    const sent = typeof q.used_today === 'number'
      ? plural(q.used_today, 'request', 'requests') + (typeof q.daily === 'number' ? ' of ' + q.daily : '')
      : el('span', {class: 'muted'}, 'not counted');
    const left = typeof q.left === 'number' ? plural(q.left, 'request', 'requests')
      : el('span', {class: 'muted'}, 'not known');
    const rate = typeof u.requests_per_second === 'number'
      ? (u.requests_per_second === 1 ? '1 request' : u.requests_per_second + ' requests') + ' a second' : '—';
    return el('article', {class: 'card upstream', 'data-upstream': u.name},
      el('h3', {}, u.name, u.kind && u.kind !== u.name ? el('span', {class: 'muted'}, ' (' + u.kind + ')') : null),
      el('p', {}, badge('upstream', u.state)),
      facts([
        ['Requests, last minute', String(u.requests_last_minute ?? '—')],
        ['Requests, last hour', String(u.requests_last_hour ?? '—')],
        ['Rate budget', rate],
        ['Paused until', isTime(u.paused_until) ? when(u.paused_until) : el('span', {class: 'muted'}, 'not paused')],
        ['Failing since', isTime(u.failing_since) ? when(u.failing_since) : undefined],
        ['Last error', u.last_error ? el('span', {class: 'text'}, u.last_error) : undefined],
        ['Sent today (UTC)', sent],
        ['Quota left', left],
      ]));
  }

  function queueText(n, oldest) {
    n = n || 0;
    if (n === 0) return 'empty';
    return [plural(n, 'waiting', 'waiting'), '; the oldest since ', when(oldest, {short: true})];
  }

  function jobsText(j) {
    const parts = [plural(j.queued || 0, 'queued', 'queued'), ', ', plural(j.running || 0, 'running', 'running')];
    if ((j.queued || 0) + (j.running || 0) > 0 && isTime(j.oldest_at)) {
      parts.push('; the oldest since ', when(j.oldest_at, {short: true}));
    }
    return parts;
  }

  function deadText(n) {
    if (n === 0) return 'none';
    return el('a', {href: '#/dead-letters'}, badge('job', 'dead', null), ' ', plural(n, 'job', 'jobs'),
      ' failed for good');
  }

  // ---- Conversations ----------------------------------------------------------

  function conversationsView(params) {
    return makeView('conversations', 'Conversations', (v) => {
      const state = {q: params.get('q') || '', before: params.get('before') || ''};
      const list = el('div', {class: 'results'});
      const pager = el('nav', {class: 'pager', 'aria-label': 'Pages of conversations'});
      v.body.append(
        searchForm('Search', 'name, e-mail, client id or task number', state.q, (q) => {
          state.q = q;
          state.before = '';
          setRoute('#/conversations' + (q ? '?' + new URLSearchParams({q}).toString() : ''));
          refresh();
        }),
        list, pager);
      v.wants = (m) => m.type === 'conversation';
      v.refresh = async () => {
        const p = new URLSearchParams({limit: '50'});
        if (state.q) p.set('q', state.q);
        if (state.before) p.set('before', state.before);
        const data = await api.get('conversations?' + p.toString());
        const convs = data.conversations || [];
        if (convs.length === 0) {
          replace(list, el('p', {class: 'empty'}, state.q ? 'No conversation matches “' + state.q + '”.'
            : 'No conversation yet.'));
        } else {
          replace(list, table('conversations',
            ['Person', 'Devices', 'E-mails', 'Channel', 'Task', 'State', 'Last activity'],
            convs.map(conversationRow)));
        }
        const page = (before) => {
          const p = new URLSearchParams();
          if (state.q) p.set('q', state.q);
          if (before) p.set('before', String(before));
          const s = p.toString();
          return '#/conversations' + (s ? '?' + s : '');
        };
        replace(pager,
          state.before ? el('a', {href: page(null), class: 'button'}, '← Newest') : null,
          data.next_before ? el('a', {href: page(data.next_before), class: 'button'}, 'Older →') : null);
      };
    });
  }

  function personName(c) {
    return c.name ? c.name : el('span', {class: 'muted'}, 'no name');
  }

  function conversationRow(c) {
    const ids = c.client_ids || [];
    return el('tr', {'data-conversation': c.id},
      cell('Person', el('a', {href: '#/conversations/' + Number(c.id), class: 'person-name'}, personName(c)),
        el('span', {class: 'muted small'}, ' #' + Number(c.id))),
      cell('Devices', String(c.devices ?? ids.length),
        ids.length ? el('div', {class: 'small muted ids'}, joined(ids.map((i) => el('code', {}, i)))) : null),
      cell('E-mails', (c.emails || []).length ? joined(c.emails.map((e) => el('span', {class: 'email'}, e)))
        : el('span', {class: 'muted'}, 'none')),
      cell('Channel', c.channel || '—'),
      cell('Task', taskRef(c.task)),
      cell('State', badge('conversation', c.state),
        c.merged_into ? [' into ', convLink(c.merged_into, '#' + Number(c.merged_into))] : null),
      cell('Last activity', when(c.last_activity, {short: true})));
  }

  // ---- One conversation -------------------------------------------------------

  function conversationView(id) {
    return makeView('conversation', 'Conversation ' + id, (v) => {
      const open = new Set();   /* the request/answer boxes the admin opened, kept across re-reads */
      v.wants = (m) => m.type === 'conversation' && Number(m.id) === id;
      v.refresh = async () => {
        let data;
        try {
          data = await api.get('conversations/' + id);
        } catch (e) {
          if (e.status === 404) {
            replace(v.body, el('p', {class: 'empty'}, 'There is no conversation ' + id + '. ',
              el('a', {href: '#/conversations'}, 'All conversations')));
            return;
          }
          throw e;
        }
        const c = data.conversation || {};
        replace(v.heading, c.name ? c.name : 'Conversation ' + id);
        document.title = (c.name ? c.name : 'Conversation ' + id) + ' · chatra-bridge';
        const timeline = data.timeline || [];
        replace(v.body,
          el('p', {class: 'back'}, el('a', {href: '#/conversations'}, '← All conversations')),
          conversationFacts(c),
          el('h2', {}, 'Timeline ', el('span', {class: 'muted small'}, '(oldest first, ' +
            plural(timeline.length, 'event', 'events') + ')')),
          data.truncated ? el('p', {class: 'muted'}, 'Only the latest ' + timeline.length +
            ' events are shown; older ones are left out.') : null,
          timeline.length ? el('ol', {class: 'timeline'}, timeline.map((ev) => timelineItem(ev, open)))
            : el('p', {class: 'empty'}, 'Nothing happened yet.'));
      };
    });
  }

  function conversationFacts(c) {
    return facts([
      ['Conversation', '#' + Number(c.id)],
      ['State', [badge('conversation', c.state),
        c.merged_into ? [' into ', convLink(c.merged_into)] : null]],
      ['Channel', c.channel || '—'],
      ['Task', [taskRef(c.task), c.tasks > 1 ? el('span', {class: 'muted small'}, ' (task ' + c.tasks +
        ' of this conversation)') : null]],
      ['E-mails', (c.emails || []).length ? joined(c.emails.map((e) => el('span', {class: 'email'}, e)))
        : el('span', {class: 'muted'}, 'none')],
      ['Phone', c.phone ? c.phone : undefined],
      ['Devices', [String(c.devices ?? (c.client_ids || []).length),
        (c.client_ids || []).length ? [': ', joined(c.client_ids.map((i) => el('code', {}, i)))] : null]],
      ['Person', c.person_id ? el('a', {href: '#/identities' + ((c.emails || []).length
        ? '?' + new URLSearchParams({q: c.emails[0]}).toString() : '')}, 'person ' + Number(c.person_id)) : undefined],
      ['Started', isTime(c.created_at) ? when(c.created_at, {clock: true}) : undefined],
      ['Last activity', when(c.last_activity, {clock: true})],
    ], 'conversation-facts');
  }

  const KIND_WORDS = {
    webhook: ['⇣', 'Webhook'],
    message: ['✉', 'Message'],
    task: ['▣', 'Task'],
    reply: ['↩', 'Reply'],
    merge: ['⇄', 'Merge'],
    visit: ['⌂', 'Visit'],
    job: ['⇡', 'Request'],
  };

  function timelineItem(ev, open) {
    const kind = KIND_WORDS[ev.type] || ['•', ev.type];
    const render = TIMELINE[ev.type] || ((e) => el('p', {}, 'Event ' + e.type));
    const li = el('li', {class: 'event event-' + ev.type, 'data-type': ev.type},
      el('div', {class: 'event-head'},
        el('span', {class: 'event-kind'}, el('span', {class: 'icon', 'aria-hidden': 'true'}, kind[0]), ' ', kind[1]),
        ' ', isTime(ev.at) ? el('time', {class: 'event-time', datetime: new Date(ev.at).toISOString(),
          title: localTime(ev.at)}, clock(ev.at)) : null),
      el('div', {class: 'event-body'}, render(ev, open)));
    if (ev.type === 'message' && ev.message_id !== undefined) li.setAttribute('data-message', ev.message_id);
    if (ev.type === 'job' && ev.job_id !== undefined) li.setAttribute('data-job', ev.job_id);
    return li;
  }

  /* The time of day, with the date when it is not today. */
  function clock(ms) {
    const d = new Date(ms);
    const time = d.toLocaleTimeString(undefined, {hour: '2-digit', minute: '2-digit', second: '2-digit'});
    if (d.toDateString() === new Date().toDateString()) return time;
    return d.toLocaleDateString(undefined, {month: 'short', day: 'numeric', year: 'numeric'}) + ', ' + time;
  }

  /* What the attempts of a job say, by how it ended. */
  function attemptsText(state, n) {
    n = n || 0;
    switch (state) {
      case 'done': return n === 0 ? 'at the first try' : 'after ' + plural(n, 'failed attempt', 'failed attempts');
      case 'dead': return n === 0 ? 'not retried: the answer was final'
        : 'given up after ' + plural(n, 'failed attempt', 'failed attempts');
      default: return n === 0 ? null : plural(n, 'failed attempt', 'failed attempts') + ' so far';
    }
  }

  const AUTHORS = {visitor: 'the visitor', agent: 'an agent'};

  function messagePath(ev) {
    const task = ev.task ? ' of task #' + ev.task : '';
    switch (ev.state) {
      case 'in_description': return ['✓', 'in the task description' + task, 'good'];
      case 'in_comment': return ['✓', 'in comment ' + (ev.comment_id || '?') + task, 'good'];
      case 'pending': return ['…', 'waiting to be sent to the tracker', 'warn'];
      case 'skipped': return ['⊘', 'not sent to the tracker', 'muted'];
      case 'unknown': return ['?', 'not known (the message is no longer stored)', 'muted'];
      default: return ['?', String(ev.state), 'muted'];
    }
  }

  function emailWhy(ev) {
    if (!ev.email) return ev.reason ? ' (' + ev.reason + ')' : null;
    return [' by the e-mail ', el('span', {class: 'email'}, ev.email),
      ev.verified === undefined ? null : ev.verified ? ' (set by the site)' : ' (typed in the chat)'];
  }

  const TIMELINE = {
    webhook: (ev) => ev.event === 'tracker'
      ? el('p', {}, 'The tracker said task #' + (ev.task || '?') + ' changed.')
      : el('p', {}, 'Chatra sent ', el('code', {}, ev.event || 'a webhook'),
        typeof ev.messages === 'number' ? ' with ' + plural(ev.messages, 'message', 'messages') : null,
        ev.device ? [' from device ', el('code', {}, ev.device)] : null, '.'),
    message: (ev) => {
      const p = messagePath(ev);
      const co = ev.coalesced_with || [];
      return [
        el('blockquote', {class: 'text'}, ev.text || ''),
        el('p', {class: 'path'}, 'From ', AUTHORS[ev.author] || ev.author || 'someone',
          el('span', {class: 'muted'}, ' (message ' + ev.message_id + ')'), ': ',
          el('span', {class: 'badge ' + p[2], 'data-state': ev.state},
            el('span', {class: 'icon', 'aria-hidden': 'true'}, p[0]), ' ', p[1]),
          co.length ? el('span', {class: 'coalesced'}, ', coalesced with ' +
            (co.length === 1 ? 'message ' : 'messages ') + co.join(', ')) : null),
      ];
    },
    task: (ev) => {
      const verbs = {created: 'created', joined: 'joined (an active task of this contact)',
        closed: 'completed', reopened: 'was completed in the tracker: the chat goes on in a new task'};
      return el('p', {}, 'Task #' + (ev.task || '?') + ' ' + (verbs[ev.action] || ev.action || ''),
        ev.gen ? el('span', {class: 'muted small'}, ' · generation ' + ev.gen) : null, '.');
    },
    reply: (ev) => [
      el('blockquote', {class: 'text'}, ev.text || ''),
      el('p', {class: 'who'}, 'From ', ev.agent || 'an employee',
        ev.comment_id ? el('span', {class: 'muted'}, ' (tracker comment ' + ev.comment_id + ')') : null,
        ' to device ', el('code', {}, ev.device || '?'),
        ev.job_state ? [': ', badge('reply', ev.job_state)] : null,
        ev.job_id ? el('span', {class: 'muted small'}, ' · job ' + ev.job_id) : null),
    ],
    merge: (ev) => el('p', {},
      ev.other_conversation ? ['Merged with ', convLink(ev.other_conversation)]
        : ['Device ', el('code', {}, ev.device || '?'), ' joined this person'],
      emailWhy(ev),
      el('span', {class: 'muted small'}, ' · merge ' + ev.merge_id), '. ',
      isTime(ev.undone_at) ? el('span', {class: 'badge muted', 'data-state': 'undone'},
        el('span', {class: 'icon', 'aria-hidden': 'true'}, '↶'), ' undone ', when(ev.undone_at, {short: true}))
        : null),
    visit: (ev) => el('p', {}, ev.note === 'device_joined' ? 'A new device joined: ' : 'A new visit from device ',
      el('code', {}, ev.device || '?'), '.'),
    job: (ev, open) => {
      /* A job has a row for each end (dead, retried, done): each keeps its own box open. */
      const key = ev.job_id + ':' + ev.at + ':' + ev.state;
      const parts = [
        el('p', {}, el('code', {}, ev.kind || 'job'), ' on ', ev.upstream || 'the tracker', ' ',
          badge('job', ev.state), attemptsText(ev.state, ev.attempts) ? ' ' + attemptsText(ev.state, ev.attempts) : null,
          el('span', {class: 'muted small'}, ' · job ' + ev.job_id),
          ev.state === 'dead' ? [' · ', el('a', {href: '#/dead-letters'}, 'dead letters')] : null),
        ev.error ? el('p', {class: 'job-error'}, 'Error: ', el('span', {class: 'text'}, ev.error)) : null,
      ];
      if (ev.request || ev.response) {
        const d = el('details', {class: 'exchange', open: open.has(key)},
          el('summary', {}, 'Request and answer'),
          exchange(ev.request, ev.response));
        d.addEventListener('toggle', () => (d.open ? open.add(key) : open.delete(key)));
        parts.push(d);
      }
      return parts;
    },
  };

  function exchange(req, resp) {
    return [
      el('h4', {}, 'Request'), el('pre', {class: 'raw'}, req || '(none recorded)'),
      el('h4', {}, 'Answer'), el('pre', {class: 'raw'}, resp || '(none recorded)'),
    ];
  }

  // ---- Identities -------------------------------------------------------------

  function identitiesView(params) {
    return makeView('identities', 'Identities', (v) => {
      const state = {q: params.get('q') || ''};
      const list = el('div', {class: 'results'});
      v.body.append(
        el('p', {class: 'muted'}, 'Each person with their devices and e-mails, and the merges that joined ' +
          'their conversations. Unmerge undoes a wrong merge: the devices and e-mails go back, and the next ' +
          'message from that device opens a task of its own.'),
        searchForm('Search', 'e-mail, contact, task or conversation number', state.q, (q) => {
          state.q = q;
          setRoute('#/identities' + (q ? '?' + new URLSearchParams({q}).toString() : ''));
          refresh();
        }),
        list);
      v.wants = (m) => m.type === 'conversation';
      v.refresh = async () => {
        const people = await api.get('identities' + (state.q ? '?' + new URLSearchParams({q: state.q}) : ''));
        if (!Array.isArray(people) || people.length === 0) {
          replace(list, el('p', {class: 'empty'}, state.q ? 'Nobody matches “' + state.q + '”.' : 'Nobody yet.'));
          return;
        }
        replace(list, el('div', {class: 'people'}, people.map((p) => personCard(p, v))));
      };
    });
  }

  function personCard(p, view) {
    const emails = p.emails || [];
    const convs = p.conversations || [];
    const merges = p.merges || [];
    return el('article', {class: 'card person', 'data-person': p.person},
      el('h3', {}, 'Person ' + p.person, p.contact ? el('span', {class: 'muted small'}, ' · contact ' + p.contact)
        : null),
      facts([
        ['E-mails', emails.length ? joined(emails.map((e) => el('span', {class: 'email'}, e.email,
          el('span', {class: 'muted small'}, e.verified ? ' (set by the site)' : ' (typed in the chat)'))))
          : el('span', {class: 'muted'}, 'none')],
      ]),
      el('h4', {}, 'Conversations'),
      el('ul', {class: 'plain'}, convs.map((c) => el('li', {},
        convLink(c.conversation), ' · ' + (c.channel || ''),
        c.task ? ' · task #' + c.task : '',
        c.merged_into ? [' · merged into ', convLink(c.merged_into)] : null,
        el('div', {class: 'small'}, 'Devices: ', (c.devices || []).length
          ? joined(c.devices.map((d) => el('code', {}, d))) : el('span', {class: 'muted'}, 'none'))))),
      merges.length ? [el('h4', {}, 'Merges'), el('ul', {class: 'plain merges'}, merges.map((m) =>
        mergeItem(m, view)))] : null);
  }

  function mergeItem(m, view) {
    const id = m.merge ?? m.id;
    const undone = m.undone === true || isTime(m.undone_at);
    const reason = m.reason && m.reason !== 'email' ? m.reason
      : 'the e-mail ' + (m.email || '?') + (m.verified ? ' (set by the site)' : ' (typed in the chat)');
    const what = m.merged_conversation
      ? ['conversation ', convLink(m.merged_conversation, '#' + m.merged_conversation), ' joined into ',
        convLink(m.survivor_conversation, '#' + m.survivor_conversation)]
      : ['a new device joined conversation ', convLink(m.survivor_conversation, '#' + m.survivor_conversation)];
    const li = el('li', {class: 'merge', 'data-merge': id},
      el('p', {}, el('strong', {}, 'Merge ' + id), ': ', what, ', by ', reason, ' · ',
        when(m.at, {short: true})),
      undone
        ? el('p', {}, el('span', {class: 'badge muted', 'data-state': 'undone'},
          el('span', {class: 'icon', 'aria-hidden': 'true'}, '↶'), ' undone'),
        isTime(m.undone_at) ? [' ', when(m.undone_at, {short: true})] : null)
        : el('p', {}, el('span', {class: 'badge good', 'data-state': 'in-force'},
          el('span', {class: 'icon', 'aria-hidden': 'true'}, '⇄'), ' in force'), ' ',
        el('button', {type: 'button', class: 'danger unmerge', on: {click: (ev) => unmerge(ev.target, id, view)}},
          'Unmerge')));
    return li;
  }

  async function unmerge(button, id, view) {
    if (!window.confirm('Undo merge ' + id + '? The devices and e-mails it joined go back to their own ' +
      'conversation, and its next message opens a task of its own.')) return;
    button.disabled = true;
    try {
      const r = await api.post('merges/' + id + '/unmerge');
      say(view, 'Merge ' + id + ' undone' + (r && r.conversation ? ': conversation ' + r.conversation +
        ' is on its own again.' : '.'));
    } catch (e) {
      if (e instanceof LoginRequired) return;
      say(view, e.status === 409 ? 'Merge ' + id + ' was already undone.' : 'Unmerge failed: ' + e.message + '.');
    }
    refresh();
  }

  // ---- Dead letters -----------------------------------------------------------

  function deadLettersView() {
    return makeView('dead-letters', 'Dead letters', (v) => {
      const open = new Set();
      v.body.append(el('p', {class: 'muted'}, 'Jobs that failed for good. Retry puts one back in the queue ' +
        '(it looks in the tracker before it writes again); Discard marks it discarded: it is kept, ' +
        'never retried, and no longer counted.'));
      const list = el('div', {class: 'results'});
      v.body.append(list);
      v.wants = (m) => m.type === 'dead_letters';
      v.refresh = async () => {
        const dead = await api.get('dead-letters');
        refreshDeadCount({dead_letters: Array.isArray(dead) ? dead.length : 0});
        if (!Array.isArray(dead) || dead.length === 0) {
          replace(list, el('p', {class: 'empty'}, el('span', {'aria-hidden': 'true'}, '✓ '), 'No dead letters.'));
          return;
        }
        replace(list, el('div', {class: 'dead-letters'}, dead.map((d) => deadCard(d, v, open))));
      };
    });
  }

  function deadCard(d, view, open) {
    const key = String(d.id);
    const details = el('details', {class: 'exchange', open: open.has(key) || undefined},
      el('summary', {}, 'Request and answer'), exchange(d.request, d.response));
    details.addEventListener('toggle', () => (details.open ? open.add(key) : open.delete(key)));
    return el('article', {class: 'card dead', 'data-job': d.id, 'data-conversation': d.conversation},
      el('h3', {}, 'Job ' + d.id, ' ', el('span', {class: 'muted small'}, '· ' + (d.kind || '?') + ' on ' +
        (d.upstream || '?'))),
      facts([
        ['Conversation', d.conversation ? convLink(d.conversation) : '—'],
        ['Failed', d.at ? when(toMs(d.at)) : '—'],
        ['Attempts', attemptsText('dead', d.attempts)],
        ['Error', d.error ? el('span', {class: 'text'}, d.error) : '—'],
      ]),
      details,
      el('p', {class: 'actions'},
        el('button', {type: 'button', class: 'retry', on: {click: (ev) => deadAction(ev.target, d.id, 'retry', view)}},
          'Retry'),
        ' ',
        el('button', {type: 'button', class: 'danger discard',
          on: {click: (ev) => deadAction(ev.target, d.id, 'discard', view)}}, 'Discard')));
  }

  async function deadAction(button, id, action, view) {
    if (action === 'discard' && !window.confirm('Discard job ' + id + '? It will never be sent; it stays in the ' +
      'store, marked discarded, with its request and answer.')) return;
    button.disabled = true;
    try {
      await api.post('dead-letters/' + id + '/' + action);
      say(view, action === 'retry' ? 'Job ' + id + ' is back in the queue.' : 'Job ' + id + ' discarded.');
    } catch (e) {
      if (e instanceof LoginRequired) return;
      say(view, (action === 'retry' ? 'Retry' : 'Discard') + ' of job ' + id + ' failed: ' + e.message + '.');
    }
    refresh();
  }

  // ---- live updates: the WebSocket ----------------------------------------------

  const live = (function () {
    let ws = null;
    let retryTimer = null;
    let delay = 1000;
    let wanted = false;

    function indicate(state, text) {
      const n = $('live');
      n.setAttribute('data-state', state);
      replace(n, el('span', {class: 'icon', 'aria-hidden': 'true'}, state === 'live' ? '●' : '○'), ' ', text);
    }

    function connect() {
      retryTimer = null;
      if (!wanted) return;
      const url = (location.protocol === 'https:' ? 'wss:' : 'ws:') + '//' + location.host + '/admin/ws';
      let opened = false;
      try {
        ws = new WebSocket(url, 'br-admin');
      } catch (e) {
        later();
        return;
      }
      ws.addEventListener('open', () => {
        opened = true;
        delay = 1000;
        indicate('live', 'live');
        /* Whatever changed while the socket was down (or before it opened). */
        refreshSoon();
      });
      ws.addEventListener('message', (ev) => {
        let m;
        try {
          m = JSON.parse(ev.data);
        } catch (e) {
          return;
        }
        if (!m || typeof m.type !== 'string') return;
        if (m.type === 'dead_letters' && !(current.view && current.view.name === 'dead-letters')) {
          refreshDeadCount();
        }
        if (current.view && current.view.wants(m)) refreshSoon();
      });
      ws.addEventListener('close', () => {
        ws = null;
        if (!wanted) return;
        if (!opened) {
          /* Refused before the upgrade: perhaps the session ended. The API says so with a 401. */
          api.get('session').then(later, (e) => {
            if (!(e instanceof LoginRequired)) later();
          });
          return;
        }
        later();
      });
    }

    function later() {
      if (!wanted || retryTimer) return;
      const wait = Math.round(delay * (0.75 + Math.random() * 0.5));
      indicate('reconnecting', 'reconnecting…');
      retryTimer = setTimeout(connect, wait);
      delay = Math.min(delay * 2, 30000);
    }

    return {
      start() {
        wanted = true;
        delay = 1000;
        indicate('connecting', 'connecting…');
        if (!ws && !retryTimer) connect();
      },
      stop() {
        wanted = false;
        if (retryTimer) clearTimeout(retryTimer);
        retryTimer = null;
        if (ws) ws.close();
        ws = null;
      },
    };
  })();

  // ---- start --------------------------------------------------------------------

  document.addEventListener('DOMContentLoaded', () => {
    $('login-form').addEventListener('submit', login);
    $('logout').addEventListener('click', logout);
    window.addEventListener('hashchange', () => route());
    setInterval(tickAges, 30000);
    startApp();
  });
})();
