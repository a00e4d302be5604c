// A tiny, safe Markdown renderer for the demo page: it builds DOM nodes and sets only
// textContent and vetted attributes, never innerHTML, so no text of a post can become
// markup or script. Covers what chat answers use: fenced code blocks, inline code,
// bold/italic/strike, links (http, https, mailto only), headings, lists, quotes, tables.
'use strict';

(function () {
    const SAFE_URL = /^(https?:\/\/|mailto:)/i;
    const INLINE = [
        {re: /`([^`\n]+)`/, make: (m) => el('code', m[1])},
        {re: /\*\*([^*\n](?:[^\n]*?[^*\n])?)\*\*/, make: (m) => wrap('strong', m[1])},
        {re: /__([^_\n](?:[^\n]*?[^_\n])?)__/, make: (m) => wrap('strong', m[1])},
        {re: /~~([^~\n]+)~~/, make: (m) => wrap('del', m[1])},
        {re: /\*([^*\s](?:[^*\n]*[^*\s])?)\*/, make: (m) => wrap('em', m[1])},
        {re: /(?<![\w])_([^_\s](?:[^_\n]*[^_\s])?)_(?![\w])/, make: (m) => wrap('em', m[1])},
        {re: /\[([^\]\n]+)\]\(([^)\s]+)\)/, make: (m) => link(m[1], m[2])},
        {re: /https?:\/\/[^\s<>()]+[^\s<>().,;:!?'"]/, make: (m) => link(m[0], m[0])},
    ];

    function el(tag, text) {
        const node = document.createElement(tag);
        if (text !== undefined) {
            node.textContent = text;
        }
        return node;
    }

    function wrap(tag, inner) {
        const node = el(tag);
        node.append(inline(inner));
        return node;
    }

    function link(text, url) {
        if (!SAFE_URL.test(url)) {
            return document.createTextNode(`[${text}](${url})`);
        }
        const a = el('a');
        a.href = url;
        a.rel = 'noopener noreferrer';
        a.target = '_blank';
        a.append(inline(text));
        return a;
    }

    // Inline spans: repeatedly take the earliest match of any rule.
    function inline(text) {
        const out = document.createDocumentFragment();
        let rest = text;
        while (rest.length > 0) {
            let best = null;
            for (const rule of INLINE) {
                const m = rule.re.exec(rest);
                if (m && (best === null || m.index < best.m.index)) {
                    best = {m, rule};
                }
            }
            if (best === null) {
                out.append(document.createTextNode(rest));
                break;
            }
            if (best.m.index > 0) {
                out.append(document.createTextNode(rest.slice(0, best.m.index)));
            }
            out.append(best.rule.make(best.m));
            rest = rest.slice(best.m.index + best.m[0].length);
        }
        return out;
    }

    const FENCE = /^\s{0,3}(`{3,}|~{3,})\s*([\w+#.-]*)\s*$/;
    const HEADING = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
    const QUOTE = /^\s{0,3}>\s?(.*)$/;
    const BULLET = /^\s*[-*+]\s+(.*)$/;
    const NUMBERED = /^\s*\d{1,9}[.)]\s+(.*)$/;
    const TABLE_RULE = /^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$/;

    function cells(line) {
        return line.trim().replace(/^\|/, '').replace(/\|$/, '').split('|').map((c) => c.trim());
    }

    function isSpecial(line, next) {
        return FENCE.test(line) || HEADING.test(line) || QUOTE.test(line) || BULLET.test(line) ||
            NUMBERED.test(line) || (line.includes('|') && next !== undefined && TABLE_RULE.test(next));
    }

    function blocks(lines) {
        const out = document.createDocumentFragment();
        let i = 0;
        while (i < lines.length) {
            const line = lines[i];
            let m;
            if (line.trim() === '') {
                i++;
            } else if ((m = FENCE.exec(line))) {
                const fence = m[1];
                const body = [];
                i++;
                while (i < lines.length && !lines[i].trim().startsWith(fence)) {
                    body.push(lines[i]);
                    i++;
                }
                i++; // the closing fence (or the end of the text)
                const pre = el('pre');
                const code = el('code', body.join('\n'));
                if (m[2]) {
                    code.className = 'language-' + m[2];
                }
                pre.append(code);
                out.append(pre);
            } else if ((m = HEADING.exec(line))) {
                out.append(wrap('h' + m[1].length, m[2]));
                i++;
            } else if (QUOTE.test(line)) {
                const inner = [];
                while (i < lines.length && (m = QUOTE.exec(lines[i]))) {
                    inner.push(m[1]);
                    i++;
                }
                const quote = el('blockquote');
                quote.append(blocks(inner));
                out.append(quote);
            } else if (BULLET.test(line) || NUMBERED.test(line)) {
                const re = BULLET.test(line) ? BULLET : NUMBERED;
                const list = el(re === BULLET ? 'ul' : 'ol');
                while (i < lines.length && (m = re.exec(lines[i]))) {
                    list.append(wrap('li', m[1]));
                    i++;
                }
                out.append(list);
            } else if (line.includes('|') && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1])) {
                const table = el('table');
                const head = el('tr');
                for (const c of cells(line)) {
                    head.append(wrap('th', c));
                }
                table.append(head);
                i += 2;
                while (i < lines.length && lines[i].includes('|') && lines[i].trim() !== '') {
                    const row = el('tr');
                    for (const c of cells(lines[i])) {
                        row.append(wrap('td', c));
                    }
                    table.append(row);
                    i++;
                }
                out.append(table);
            } else {
                const para = [];
                while (i < lines.length && lines[i].trim() !== '' && (para.length === 0 || !isSpecial(lines[i], lines[i + 1]))) {
                    para.push(lines[i]);
                    i++;
                }
                out.append(wrap('p', para.join('\n')));
            }
        }
        return out;
    }

    window.renderMarkdown = function renderMarkdown(text) {
        return blocks(String(text).replace(/\r\n?/g, '\n').split('\n'));
    };
})();
