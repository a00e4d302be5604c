// The demo page: the channel's threads, live over the emulator's own REST v4 and WebSocket
// API, and a composer that posts as a chosen seeded user. No framework; every piece of post
// text goes through textContent (see markdown.js).
'use strict';

const EMOJI = {
    '+1': '👍', thumbsup: '👍', '-1': '👎', thumbsdown: '👎', white_check_mark: '✅',
    heavy_check_mark: '✔️', x: '❌', heart: '❤️', eyes: '👀', tada: '🎉', rocket: '🚀',
    hourglass: '⌛', hourglass_flowing_sand: '⏳', warning: '⚠️', no_entry: '⛔',
    octagonal_sign: '🛑', stop_sign: '🛑', question: '❓', grey_question: '❔', gear: '⚙️',
    repeat: '🔁', arrows_counterclockwise: '🔄', hammer_and_wrench: '🛠️', robot_face: '🤖',
    smile: '😄', thinking_face: '🤔', zap: '⚡', memo: '📝', lock: '🔒', unlock: '🔓',
};
const QUICK_REACTIONS = ['+1', '-1', 'white_check_mark', 'x'];

const state = {
    session: null,
    users: new Map(), // id -> {id, username, is_bot}
    posts: new Map(), // id -> post
    target: '', // root id the composer replies to ('' = the newest thread of the bot)
    socket: null,
    typing: new Map(), // user id -> timer
};

const $ = (id) => document.getElementById(id);

function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
        if (key === 'text') {
            node.textContent = value;
        } else if (key === 'onclick') {
            node.addEventListener('click', value);
        } else if (key.startsWith('data-')) {
            node.setAttribute(key, value);
        } else {
            node[key] = value;
        }
    }
    node.append(...children);
    return node;
}

function me() {
    const id = $('user').value;
    return state.session.users.find((u) => u.id === id);
}

async function api(method, path, body, user = me()) {
    const response = await fetch('/api/v4' + path, {
        method,
        headers: {
            Authorization: 'Bearer ' + user.token,
            'Content-Type': 'application/json',
            'X-Requested-With': 'XMLHttpRequest',
        },
        body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = response.headers.get('Content-Type') === 'application/json' ? await response.json() : await response.text();
    if (!response.ok) {
        throw new Error((data && data.message) || `${method} ${path}: ${response.status}`);
    }
    return data;
}

async function userOf(id) {
    if (!state.users.has(id)) {
        state.users.set(id, {id, username: id.slice(0, 8)}); // placeholder while loading
        try {
            const u = await api('GET', '/users/' + id, undefined, state.session.viewer);
            state.users.set(id, {id, username: u.username, is_bot: !!u.is_bot});
            render();
        } catch (err) {
            console.warn('user lookup failed', id, err);
        }
    }
    return state.users.get(id);
}

// --- rendering ----------------------------------------------------------------------

function timeOf(ms) {
    return new Date(ms).toLocaleTimeString([], {hour: '2-digit', minute: '2-digit', second: '2-digit'});
}

function reactionsOf(post) {
    const grouped = new Map();
    for (const r of (post.metadata && post.metadata.reactions) || []) {
        if (!grouped.has(r.emoji_name)) {
            grouped.set(r.emoji_name, []);
        }
        grouped.get(r.emoji_name).push(r.user_id);
    }
    return grouped;
}

async function toggleReaction(post, emoji) {
    const user = me();
    const mine = (reactionsOf(post).get(emoji) || []).includes(user.id);
    try {
        if (mine) {
            await api('DELETE', `/users/${user.id}/posts/${post.id}/reactions/${encodeURIComponent(emoji)}`);
        } else {
            await api('POST', '/reactions', {user_id: user.id, post_id: post.id, emoji_name: emoji});
        }
    } catch (err) {
        showError(err);
    }
}

async function openFile(file) {
    try {
        const response = await fetch('/api/v4/files/' + file.id, {
            headers: {Authorization: 'Bearer ' + state.session.viewer.token},
        });
        if (!response.ok) {
            throw new Error(`file ${file.name}: ${response.status}`);
        }
        const url = URL.createObjectURL(await response.blob());
        const a = el('a', {href: url, download: file.name || file.id});
        a.click();
        setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (err) {
        showError(err);
    }
}

// What a bot post is for the bot (its props), so the page can set it apart: an approval
// (waiting, or decided once the bot edits away its how-to-answer line), a question, or the
// activity post of a running turn (live while it shows the running view, which starts with
// ⏳; then the one summary line).
function kindOf(post, bot) {
    const props = (bot && post.props) || {};
    const message = post.message || '';
    if (props.mmclaude_approval) {
        const pending = message.includes('React :+1:');
        return pending
            ? {classes: ['approval-post', 'approval-pending'], tag: 'waiting', label: 'waiting for you'}
            : {classes: ['approval-post', 'approval-decided'], tag: 'decided', label: 'decided'};
    }
    if (props.mmclaude_question) {
        return message.includes('Answer with `!answer')
            ? {classes: ['approval-post'], tag: 'waiting', label: 'question'}
            : {classes: ['approval-post', 'approval-decided'], tag: 'decided', label: 'answered'};
    }
    if (props.mmclaude_activity_for) {
        return message.startsWith('⏳')
            ? {classes: ['activity', 'activity-live'], tag: 'live', label: 'live'}
            : {classes: ['activity', 'activity-done'], tag: 'summary', label: 'activity'};
    }
    return {classes: [], tag: '', label: ''};
}

function renderPost(post) {
    const author = state.users.get(post.user_id) || {username: post.user_id.slice(0, 8)};
    if (!state.users.has(post.user_id)) {
        userOf(post.user_id);
    }
    const bot = post.user_id === state.session.bot.id || author.is_bot;
    const meta = el('div', {className: 'meta'},
        el('span', {className: 'author', text: author.username}),
    );
    if (bot) {
        meta.append(el('span', {className: 'bot-tag', text: 'BOT'}));
    }
    meta.append(el('span', {className: 'time', text: timeOf(post.create_at)}));
    if (post.edit_at > 0) {
        meta.append(el('span', {className: 'edited', text: '(edited)'}));
    }
    const actions = el('span', {className: 'actions'});
    for (const emoji of QUICK_REACTIONS) {
        actions.append(el('button', {
            type: 'button', title: ':' + emoji + ':', text: EMOJI[emoji],
            'data-react': emoji, onclick: () => toggleReaction(post, emoji),
        }));
    }
    meta.append(actions);
    const kind = kindOf(post, bot);
    if (kind.tag) {
        meta.insertBefore(el('span', {className: 'kind-tag ' + kind.tag, text: kind.label}), meta.querySelector('.time'));
    }
    const body = el('div', {className: 'body'});
    body.append(window.renderMarkdown(post.message || ''));
    const node = el('div', {className: ['post', bot ? 'by-bot' : '', ...kind.classes].join(' ').trim(), 'data-post-id': post.id}, meta, body);
    const files = (post.metadata && post.metadata.files) || [];
    if (files.length > 0) {
        const list = el('div', {className: 'files'});
        for (const f of files) {
            list.append(el('button', {type: 'button', className: 'file', text: '📎 ' + (f.name || f.id), onclick: () => openFile(f)}));
        }
        node.append(list);
    } else if ((post.file_ids || []).length > 0) {
        node.append(el('div', {className: 'files'}, ...post.file_ids.map((id) => el('span', {className: 'file', text: '📎 ' + id}))));
    }
    if (kind.classes.includes('approval-pending')) {
        // The bot's approval posts are answered by reactions (contract: +1 once,
        // white_check_mark always, -1 deny): one click each.
        const choices = [['+1', 'Allow once'], ['white_check_mark', 'Always allow'], ['-1', 'Deny']];
        node.append(el('div', {className: 'approval'}, ...choices.map(([emoji, label]) => el('button', {
            type: 'button', text: `${EMOJI[emoji]} ${label}`, 'data-approve': emoji,
            onclick: () => toggleReaction(post, emoji),
        }))));
    }
    const grouped = reactionsOf(post);
    if (grouped.size > 0) {
        const row = el('div', {className: 'reactions'});
        const my = me();
        for (const [emoji, users] of grouped) {
            const names = users.map((id) => (state.users.get(id) || {username: id}).username).join(', ');
            row.append(el('button', {
                type: 'button',
                className: 'reaction' + (my && users.includes(my.id) ? ' mine' : ''),
                title: names, text: `${EMOJI[emoji] || ':' + emoji + ':'} ${users.length}`,
                'data-emoji': emoji, onclick: () => toggleReaction(post, emoji),
            }));
        }
        node.append(row);
    }
    return node;
}

function threads() {
    const roots = [];
    const replies = new Map();
    const byCreate = [...state.posts.values()].filter((p) => !p.delete_at)
        .sort((a, b) => a.create_at - b.create_at || (a.id < b.id ? -1 : 1));
    for (const p of byCreate) {
        if (p.root_id) {
            if (!replies.has(p.root_id)) {
                replies.set(p.root_id, []);
            }
            replies.get(p.root_id).push(p);
        } else {
            roots.push(p);
        }
    }
    return {roots, replies};
}

function currentTarget(roots) {
    if (state.target && state.posts.has(state.target)) {
        return state.target;
    }
    const ofBot = roots.filter((r) => r.user_id === state.session.bot.id);
    const pick = ofBot.length > 0 ? ofBot[ofBot.length - 1] : roots[roots.length - 1];
    return pick ? pick.id : '';
}

function render() {
    const main = $('threads');
    const atBottom = main.scrollHeight - main.scrollTop - main.clientHeight < 40;
    const {roots, replies} = threads();
    const target = currentTarget(roots);
    const out = document.createDocumentFragment();
    for (const root of roots) {
        const thread = el('section', {className: 'thread' + (root.id === target ? ' selected' : ''), 'data-root-id': root.id});
        thread.append(renderPost(root));
        const children = replies.get(root.id) || [];
        if (children.length > 0) {
            thread.append(el('div', {className: 'replies'}, ...children.map(renderPost)));
        }
        if (root.id !== target) {
            thread.append(el('div', {className: 'thread-footer'}, el('button', {
                type: 'button', className: 'reply-here', text: 'Reply in this thread',
                onclick: () => { state.target = root.id; render(); $('message').focus(); },
            })));
        }
        out.append(thread);
    }
    main.replaceChildren(out);
    const root = state.posts.get(target);
    $('target').textContent = root
        ? `replying in the thread “${root.message.slice(0, 60)}${root.message.length > 60 ? '…' : ''}”`
        : 'a new post in the channel';
    if (atBottom) {
        main.scrollTop = main.scrollHeight;
    }
}

let renderQueued = false;
function scheduleRender() {
    if (!renderQueued) {
        renderQueued = true;
        requestAnimationFrame(() => { renderQueued = false; render(); });
    }
}

function showError(err) {
    const target = $('target');
    target.replaceChildren(el('span', {className: 'error', text: String(err.message || err)}));
    setTimeout(render, 4000);
}

function renderTyping() {
    const names = [...state.typing.keys()].map((id) => (state.users.get(id) || {username: id}).username);
    $('typing').textContent = names.length ? `${names.join(', ')} ${names.length > 1 ? 'are' : 'is'} typing…` : '';
}

// --- data -------------------------------------------------------------------------

async function loadPosts() {
    const channel = state.session.channel.id;
    const list = await api('GET', `/channels/${channel}/posts?per_page=200`, undefined, state.session.viewer);
    state.posts.clear();
    for (const id of Object.keys(list.posts)) {
        state.posts.set(id, list.posts[id]);
    }
    render();
}

function upsert(post) {
    if (post.channel_id !== state.session.channel.id) {
        return;
    }
    state.posts.set(post.id, post);
    scheduleRender();
}

function onEvent(msg) {
    const data = msg.data || {};
    switch (msg.event) {
    case 'hello':
        loadPosts().catch(showError); // a fresh stream: catch up over REST
        break;
    case 'posted':
    case 'post_edited': {
        const post = JSON.parse(data.post);
        upsert(post);
        if (msg.event === 'posted' && state.typing.has(post.user_id)) {
            clearTimeout(state.typing.get(post.user_id));
            state.typing.delete(post.user_id);
            renderTyping();
        }
        break;
    }
    case 'post_deleted': {
        const post = JSON.parse(data.post);
        state.posts.delete(post.id);
        scheduleRender();
        break;
    }
    case 'reaction_added':
    case 'reaction_removed': {
        const r = JSON.parse(data.reaction);
        const post = state.posts.get(r.post_id);
        if (post) {
            const meta = post.metadata || (post.metadata = {});
            const others = (meta.reactions || []).filter((x) => !(x.user_id === r.user_id && x.emoji_name === r.emoji_name));
            meta.reactions = msg.event === 'reaction_added' ? [...others, r] : others;
            scheduleRender();
        }
        break;
    }
    case 'typing': {
        const id = data.user_id;
        clearTimeout(state.typing.get(id));
        state.typing.set(id, setTimeout(() => { state.typing.delete(id); renderTyping(); }, 6000));
        userOf(id).then(renderTyping);
        break;
    }
    default:
        break;
    }
}

function connect() {
    const status = $('status');
    const url = location.origin.replace(/^http/, 'ws') + '/api/v4/websocket';
    const socket = new WebSocket(url);
    state.socket = socket;
    socket.onopen = () => {
        socket.send(JSON.stringify({seq: 1, action: 'authentication_challenge', data: {token: state.session.viewer.token}}));
    };
    socket.onmessage = (evt) => {
        let msg;
        try {
            msg = JSON.parse(evt.data);
        } catch (err) {
            console.warn('a frame that is not JSON', err);
            return;
        }
        if (msg.event === 'hello') {
            status.textContent = 'live';
            status.dataset.state = 'live';
        }
        if (msg.event) {
            try {
                onEvent(msg);
            } catch (err) {
                console.warn('an event the page cannot read', msg.event, err); // skipped
            }
        }
    };
    socket.onclose = () => {
        status.textContent = 'reconnecting…';
        status.dataset.state = 'offline';
        setTimeout(connect, 1000);
    };
}

async function send(evt) {
    evt.preventDefault();
    const box = $('message');
    const message = box.value.trim();
    if (!message) {
        return;
    }
    const user = me();
    const {roots} = threads();
    const root = currentTarget(roots);
    const post = {
        channel_id: state.session.channel.id, message, root_id: root,
        pending_post_id: `${user.id}:${Date.now()}`,
    };
    box.value = '';
    try {
        upsert(await api('POST', '/posts', post));
    } catch (err) {
        box.value = message;
        showError(err);
    }
}

async function start() {
    const response = await fetch('/_web/session');
    state.session = await response.json();
    $('channel-name').textContent = '#' + state.session.channel.name;
    state.users.set(state.session.bot.id, {id: state.session.bot.id, username: state.session.bot.username, is_bot: true});
    const picker = $('user');
    for (const u of state.session.users) {
        state.users.set(u.id, {id: u.id, username: u.username, is_bot: false});
        picker.append(el('option', {value: u.id, text: u.username}));
    }
    picker.addEventListener('change', render);
    $('composer').addEventListener('submit', send);
    $('message').addEventListener('keydown', (evt) => {
        if (evt.key === 'Enter' && !evt.shiftKey) {
            send(evt);
        }
    });
    connect();
}

start().catch((err) => {
    $('status').textContent = 'failed: ' + err;
    $('status').dataset.state = 'offline';
});
