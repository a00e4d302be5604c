// Drives a Mattermost server (our emulator) with the official JavaScript client,
// @mattermost/client (Client4 for REST, WebSocketClient for events), the way the web and
// mobile apps use it. Run by tests/clients/test_real_clients.py:
//
//   node tests/clients/mattermost_client.mjs SEED_JSON
//
// SEED_JSON is what the emulator's GET /_admin/seed answers. Each step prints one line
// `STEP {"step": name, "ok": bool, "error"?: text}` on stdout; the library's own console
// chatter goes to stderr. Exit 0 when every step passed. Every wait has a deadline.
import {createRequire} from 'node:module';

const require = createRequire(import.meta.url);
const WS = require('ws');

// Node 20 has neither a WebSocket nor a CloseEvent global; the client reads
// WebSocket.OPEN and builds CloseEvents on a ping timeout or a seq mismatch.
globalThis.WebSocket = globalThis.WebSocket || WS;
if (typeof globalThis.CloseEvent === 'undefined') {
    globalThis.CloseEvent = class CloseEvent extends Event {
        constructor(type, init = {}) {
            super(type);
            this.code = init.code ?? 0;
            this.reason = init.reason ?? '';
            this.wasClean = init.wasClean ?? false;
        }
    };
}
const log = (...args) => process.stderr.write(args.map(String).join(' ') + '\n');
console.log = log;
console.warn = log;
console.error = log;

const {Client4, WebSocketClient} = require('@mattermost/client');

const seed = JSON.parse(process.argv[2]);
const STEP_TIMEOUT_MS = 10000;
const failed = [];

function emit(step, ok, error) {
    const line = {step, ok};
    if (error !== undefined) {
        line.error = String(error);
    }
    process.stdout.write('STEP ' + JSON.stringify(line) + '\n');
}

function check(condition, what) {
    if (!condition) {
        throw new Error(what);
    }
}

async function step(name, body) {
    let timer;
    try {
        const deadline = new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`no result within ${STEP_TIMEOUT_MS} ms`)), STEP_TIMEOUT_MS);
        });
        const value = await Promise.race([body(), deadline]);
        emit(name, true);
        return value;
    } catch (err) {
        failed.push(name);
        emit(name, false, err && err.stack ? err.stack : err);
        return undefined;
    } finally {
        clearTimeout(timer);
    }
}

function client(token) {
    const c = new Client4();
    c.setUrl(seed.url);
    c.setToken(token);
    c.setUserAgent('mmclaude-real-client-test');
    return c;
}

// Every event a socket delivers, in order, and waiters on them.
class Events {
    constructor() {
        this.list = [];
        this.waiters = [];
    }

    push(msg) {
        this.list.push(msg);
        for (const w of [...this.waiters]) {
            if (w.predicate(msg)) {
                this.waiters.splice(this.waiters.indexOf(w), 1);
                w.resolve(msg);
            }
        }
    }

    wait(predicate, what) {
        const found = this.list.find(predicate);
        if (found) {
            return Promise.resolve(found);
        }
        return new Promise((resolve, reject) => {
            const w = {predicate, resolve};
            this.waiters.push(w);
            setTimeout(() => {
                const i = this.waiters.indexOf(w);
                if (i >= 0) {
                    this.waiters.splice(i, 1);
                    reject(new Error(`timed out waiting for ${what}`));
                }
            }, STEP_TIMEOUT_MS);
        });
    }
}

// A WebSocketClient as the apps configure it, with a quick retry so a reconnect is fast.
// mode: 'header' (the mobile app: the token on the upgrade request), 'cookie' (the web app:
// the MMAUTHTOKEN cookie goes with the upgrade, no token given to the client) or 'challenge'
// (a token given to the client only: it sends authentication_challenge after the upgrade).
function socket(token, {mode}) {
    const events = new Events();
    const state = {opened: 0, reconnects: 0, missed: 0, closes: 0, urls: []};
    const ws = new WebSocketClient({
        minWebSocketRetryTime: 50,
        reconnectJitterRange: 1,
        clientPingInterval: 30000,
        newWebSocketFn: (url) => {
            state.urls.push(url);
            const headers = {
                header: {Authorization: `Bearer ${token}`},
                cookie: {Cookie: `MMAUTHTOKEN=${token}`},
                challenge: {},
            }[mode];
            return new WS(url, {headers});
        },
    });
    ws.addMessageListener((msg) => events.push(msg));
    ws.addFirstConnectListener(() => state.opened++);
    ws.addReconnectListener(() => state.reconnects++);
    ws.addMissedMessageListener(() => state.missed++);
    ws.addCloseListener(() => state.closes++);
    const wsUrl = seed.url.replace(/^http/, 'ws') + '/api/v4/websocket';
    ws.initialize(wsUrl, mode === 'cookie' ? undefined : token);
    return {ws, events, state};
}

function seqsContiguous(events) {
    return events.list.every((msg, i) => msg.seq === i);
}

function parsePost(msg) {
    return JSON.parse(msg.data.post);
}

const sendWithReply = (ws, action, data) => new Promise((resolve) => ws.sendMessage(action, data, resolve));

async function main() {
    const alice = client(seed.users.alice.token);
    const bob = client(seed.users.bob.token);
    const channelId = seed.channel.id;
    let me;
    let root;
    let reply;

    await step('rest.get_me', async () => {
        me = await alice.getMe();
        check(me.id === seed.users.alice.id, `getMe id ${me.id}`);
        check(me.username === 'alice', `getMe username ${me.username}`);
        check(me.notify_props && typeof me.notify_props === 'object', 'own notify_props');
        check(alice.serverVersion && alice.serverVersion.length > 0, 'X-Version-Id read');
    });
    await step('rest.get_user_bot', async () => {
        const bot = await alice.getUser(seed.bot.id);
        check(bot.is_bot === true, 'bot user has is_bot');
        check(bot.notify_props === undefined, "another user's notify_props are sanitized away");
    });
    await step('rest.get_channel', async () => {
        const channel = await alice.getChannel(channelId);
        check(channel.id === channelId && channel.team_id === seed.team.id, 'channel ids');
    });

    // Sockets: alice like the mobile app, bob like the web app, mallory with a challenge.
    const a = socket(seed.users.alice.token, {mode: 'header'});
    const b = socket(seed.users.bob.token, {mode: 'cookie'});
    const c = socket(seed.users.mallory.token, {mode: 'challenge'});
    await step('ws.hello', async () => {
        const hello = await a.events.wait((m) => m.event === 'hello', 'alice hello');
        check(hello.seq === 0, `hello seq ${hello.seq}`);
        check(/^[a-z0-9]{26}$/.test(hello.data.connection_id), 'hello connection_id');
        check(hello.broadcast.user_id === seed.users.alice.id, 'hello broadcast.user_id');
        check(typeof hello.data.server_version === 'string', 'hello server_version');
        check(a.state.urls[0].includes('connection_id=&sequence_number=0'), a.state.urls[0]);
        const helloB = await b.events.wait((m) => m.event === 'hello', 'bob hello (cookie)');
        check(helloB.broadcast.user_id === seed.users.bob.id, 'cookie hello user');
        const helloC = await c.events.wait((m) => m.event === 'hello', 'mallory hello (challenge)');
        check(helloC.broadcast.user_id === seed.users.mallory.id, 'challenge hello user');
        check(helloC.seq === 0, 'challenge hello seq');
    });
    await step('ws.ping_action', async () => {
        const answer = await sendWithReply(a.ws, 'ping', {});
        check(answer.status === 'OK' && answer.data.text === 'pong', JSON.stringify(answer));
    });

    const pending = `${seed.users.alice.id}:${Date.now()}`;
    await step('rest.create_root_post', async () => {
        root = await alice.createPost({channel_id: channelId, message: 'root from @mattermost/client', pending_post_id: pending});
        check(/^[a-z0-9]{26}$/.test(root.id), 'post id');
        check(root.pending_post_id === pending, `pending_post_id echoed: ${root.pending_post_id}`);
        check(root.user_id === seed.users.alice.id && root.root_id === '', 'author and root_id');
        check(root.metadata && typeof root.metadata === 'object', 'metadata object');
    });
    await step('ws.posted_root', async () => {
        const ev = await a.events.wait((m) => m.event === 'posted' && parsePost(m).id === root.id, 'posted for root');
        const post = parsePost(ev);
        check(post.pending_post_id === pending, 'posted carries pending_post_id');
        check(ev.broadcast.channel_id === channelId, 'posted broadcast.channel_id');
        check(typeof ev.data.channel_display_name === 'string', 'channel_display_name');
        check(ev.data.sender_name === '@alice', `sender_name ${ev.data.sender_name}`);
        check(ev.data.channel_type === 'O' && ev.data.team_id === seed.team.id, 'channel_type and team_id');
        await b.events.wait((m) => m.event === 'posted' && parsePost(m).id === root.id, 'bob sees the post');
    });
    await step('rest.pending_post_id_dedup', async () => {
        const again = await alice.createPost({channel_id: channelId, message: 'root from @mattermost/client', pending_post_id: pending});
        check(again.id === root.id, 'a retry with the same pending_post_id returns the same post');
    });
    await step('rest.create_reply', async () => {
        reply = await bob.createPost({channel_id: channelId, root_id: root.id, message: 'a **reply**', pending_post_id: `${seed.users.bob.id}:${Date.now()}`});
        check(reply.root_id === root.id, 'root_id');
        await a.events.wait((m) => m.event === 'posted' && parsePost(m).id === reply.id, 'posted for reply');
    });
    await step('ws.mentions', async () => {
        const post = await alice.createPost({channel_id: channelId, root_id: root.id, message: 'what do you think, @bob?'});
        const forBob = await b.events.wait((m) => m.event === 'posted' && parsePost(m).id === post.id, 'posted for bob');
        check(JSON.parse(forBob.data.mentions).includes(seed.users.bob.id), 'bob is in mentions');
        const forAlice = await a.events.wait((m) => m.event === 'posted' && parsePost(m).id === post.id, 'posted for alice');
        check(forAlice.data.mentions === undefined, 'no mentions for the author');
    });
    await step('rest.get_thread', async () => {
        const thread = await alice.getPostThread(root.id);
        check(thread.order[0] === root.id, `order[0] ${thread.order[0]}`);
        check(thread.order.includes(reply.id), 'reply in order');
        check(thread.posts[reply.id].message === 'a **reply**', 'reply message');
        check(thread.posts[root.id].reply_count === 2, `reply_count ${thread.posts[root.id].reply_count}`);
        check(thread.posts[root.id].pending_post_id === '', 'pending_post_id is not stored');
    });
    await step('rest.posts_since', async () => {
        const list = await alice.getPostsSince(channelId, root.create_at - 1);
        check(list.order.includes(root.id) && list.order.includes(reply.id), JSON.stringify(list.order));
        check(list.posts[reply.id].root_id === root.id, 'reply in posts');
    });
    await step('rest.add_reaction', async () => {
        const reaction = await alice.addReaction(seed.users.alice.id, reply.id, '+1');
        check(reaction.emoji_name === '+1' && reaction.post_id === reply.id, JSON.stringify(reaction));
        const ev = await b.events.wait((m) => m.event === 'reaction_added', 'reaction_added');
        const data = JSON.parse(ev.data.reaction);
        check(data.user_id === seed.users.alice.id && data.emoji_name === '+1', 'reaction_added payload');
        const reactions = await alice.getReactionsForPost(reply.id);
        check(reactions.length === 1, `reactions ${reactions.length}`);
        const post = await alice.getPost(reply.id);
        check(post.has_reactions === true, 'has_reactions');
        check(post.metadata.reactions && post.metadata.reactions.length === 1, 'metadata.reactions');
    });
    await step('rest.patch_post', async () => {
        const patched = await alice.patchPost({id: root.id, message: 'root, edited'});
        check(patched.message === 'root, edited' && patched.edit_at > 0, 'patched message and edit_at');
        const ev = await b.events.wait((m) => m.event === 'post_edited' && parsePost(m).id === root.id, 'post_edited');
        check(parsePost(ev).message === 'root, edited', 'post_edited message');
    });
    await step('rest.message_length_limit', async () => {
        const max = '😀'.repeat(16383); // one rune each, four UTF-8 bytes, two UTF-16 units
        const ok = await alice.createPost({channel_id: channelId, root_id: root.id, message: max});
        check([...ok.message].length === 16383, 'a 16383-rune message is accepted whole');
        let error;
        try {
            await alice.createPost({channel_id: channelId, root_id: root.id, message: max + 'x'});
        } catch (err) {
            error = err;
        }
        check(error !== undefined, 'a 16384-rune message is refused');
        check(error.server_error_id === 'model.post.is_valid.message_length.app_error', `error id ${error.server_error_id}`);
        check(error.status_code === 400, `status ${error.status_code}`);
    });
    await step('ws.typing', async () => {
        const answer = await new Promise((resolve) => {
            b.ws.sendMessage('user_typing', {channel_id: channelId, parent_id: root.id}, resolve);
        });
        check(answer.status === 'OK', JSON.stringify(answer));
        const ev = await a.events.wait((m) => m.event === 'typing', 'typing event');
        check(ev.data.user_id === seed.users.bob.id && ev.data.parent_id === root.id, JSON.stringify(ev.data));
        check(ev.broadcast.channel_id === channelId, 'typing broadcast.channel_id');
        await new Promise((resolve) => b.ws.userTyping(channelId, root.id, resolve));
    });
    await step('ws.client_actions', async () => {
        // What the apps send as the user moves around: all answered OK.
        const answers = await Promise.all([
            new Promise((resolve) => a.ws.updateActiveChannel(channelId, resolve)),
            new Promise((resolve) => a.ws.updateActiveTeam(seed.team.id, resolve)),
            new Promise((resolve) => a.ws.updateActiveThread(true, channelId, resolve)),
            new Promise((resolve) => a.ws.userUpdateActiveStatus(true, false, resolve)),
            new Promise((resolve) => a.ws.getStatuses(resolve)),
            new Promise((resolve) => a.ws.getStatusesByIds([seed.users.bob.id], resolve)),
        ]);
        for (const answer of answers) {
            check(answer.status === 'OK', JSON.stringify(answer));
        }
        check(answers[5].data[seed.users.bob.id] === 'online', JSON.stringify(answers[5]));
    });
    await step('rest.channel_pages', async () => {
        const page = await alice.getPosts(channelId, 0, 60);
        check(page.order[0] === root.id || page.order.includes(root.id), 'root in the first page');
        const before = await alice.getPostsBefore(channelId, reply.id, 0, 60);
        check(before.order.includes(root.id) && !before.order.includes(reply.id), JSON.stringify(before.order));
        const after = await alice.getPostsAfter(channelId, root.id, 0, 60);
        check(after.order.includes(reply.id) && !after.order.includes(root.id), JSON.stringify(after.order));
        const users = await alice.getProfilesByUsernames(['bob', 'claudebot']);
        check(users.map((u) => u.username).sort().join() === 'bob,claudebot', 'profiles by usernames');
    });
    await step('rest.remove_reaction', async () => {
        await alice.removeReaction(seed.users.alice.id, reply.id, '+1');
        const ev = await b.events.wait((m) => m.event === 'reaction_removed', 'reaction_removed');
        check(JSON.parse(ev.data.reaction).emoji_name === '+1', 'reaction_removed payload');
        check((await alice.getReactionsForPost(reply.id)).length === 0, 'no reactions left');
    });
    await step('rest.delete_post', async () => {
        const doomed = await alice.createPost({channel_id: channelId, root_id: root.id, message: 'to be deleted'});
        await alice.deletePost(doomed.id);
        const ev = await b.events.wait((m) => m.event === 'post_deleted' && parsePost(m).id === doomed.id, 'post_deleted');
        check(ev.broadcast.channel_id === channelId, 'post_deleted broadcast.channel_id');
        const thread = await alice.getPostThread(root.id);
        check(!thread.order.includes(doomed.id), 'a deleted post leaves the thread');
    });
    await step('rest.cookie_session', async () => {
        // The web app's REST calls: no token of its own, the MMAUTHTOKEN cookie, and the
        // X-Requested-With header that passes the server's CSRF check.
        const web = new Client4();
        web.setUrl(seed.url);
        web.setHeader('Cookie', `MMAUTHTOKEN=${seed.users.bob.token}`);
        check((await web.getMe()).id === seed.users.bob.id, 'cookie session user');
        const post = await web.createPost({channel_id: channelId, root_id: root.id, message: 'from the web app'});
        check(post.user_id === seed.users.bob.id, 'a cookie session may post');
    });
    await step('rest.errors', async () => {
        const expectError = async (call, status, id) => {
            try {
                await call();
            } catch (err) {
                check(err.status_code === status, `status ${err.status_code}, wanted ${status}`);
                check(err.server_error_id === id, `error id ${err.server_error_id}, wanted ${id}`);
                return;
            }
            throw new Error(`no error, wanted ${status} ${id}`);
        };
        const stranger = client('notatoken');
        await expectError(() => stranger.getMe(), 401, 'api.context.session_expired.app_error');
        await expectError(() => bob.createPost({channel_id: seed.other_channel.id, message: 'x'}), 403, 'api.context.permissions.app_error');
        await expectError(() => alice.getPost('a'.repeat(26)), 404, 'app.post.get.app_error');
        await expectError(() => alice.patchPost({id: root.id, message: 'x'.repeat(16384)}), 400, 'model.post.is_valid.message_length.app_error');
        await expectError(() => alice.patchPost({id: reply.id, message: 'not mine'}), 403, 'api.context.permissions.app_error');
    });
    await step('ws.seq_contiguous', async () => {
        check(seqsContiguous(a.events), 'alice seqs ' + a.events.list.map((m) => m.seq).join(','));
        check(seqsContiguous(b.events), 'bob seqs ' + b.events.list.map((m) => m.seq).join(','));
        check(seqsContiguous(c.events), 'mallory seqs ' + c.events.list.map((m) => m.seq).join(','));
        check(c.events.list.some((m) => m.event === 'posted'), 'mallory got the posted events');
        const closes = [a, b, c].map((x) => x.state.closes);
        check(closes.every((n) => n === 0), 'no socket closed (no seq mismatch): ' + closes);
    });
    await step('ws.reconnect_resumes', async () => {
        const connectionId = a.events.list[0].data.connection_id;
        const before = a.events.list.length;
        const cut = await fetch(seed.url + '/_admin/drop_sockets', {method: 'POST'});
        check(cut.ok, 'drop_sockets');
        // Posted while alice's socket is down: the server queues it for her connection.
        const missed = await bob.createPost({channel_id: channelId, root_id: root.id, message: 'while you were away'});
        const ev = await a.events.wait((m) => m.event === 'posted' && parsePost(m).id === missed.id, 'the missed post after the reconnect');
        check(a.state.reconnects >= 1, 'reconnect listener called');
        const url = a.state.urls[a.state.urls.length - 1];
        check(url.includes(`connection_id=${connectionId}&sequence_number=${before}`), `reconnect url ${url}`);
        check(a.state.missed === 0, 'no missed-messages resync (same connection id)');
        check(ev.seq === before || a.events.list.slice(before).every((m) => m.event !== 'hello'), 'no new hello');
        check(seqsContiguous(a.events), 'seqs stay contiguous: ' + a.events.list.map((m) => m.seq).join(','));
    });
    await step('ws.restart_resyncs', async () => {
        // A server restart forgets connections: the client gets a new hello, calls its
        // missed-message listeners and starts again at seq 0.
        const cut = await fetch(seed.url + '/_admin/restart_sockets', {method: 'POST'});
        check(cut.ok, 'restart_sockets');
        const oldId = a.events.list[0].data.connection_id;
        await a.events.wait((m) => m.event === 'hello' && m.data.connection_id !== oldId, 'a new hello');
        check(a.state.missed === 1, `missed listener calls ${a.state.missed}`);
    });

    for (const x of [a, b, c]) {
        x.ws.close();
    }
    process.stdout.write('DONE ' + JSON.stringify({failed}) + '\n');
    process.exit(failed.length === 0 ? 0 : 1);
}

main().catch((err) => {
    emit('main', false, err && err.stack ? err.stack : err);
    process.exit(2);
});
