// Writes engine/src/test/resources/fixtures/tokenizer_reference.json: the token ids that Hugging Face's own
// JavaScript tokenizer code (npm @huggingface/transformers, pinned in package.json, which runs
// @huggingface/tokenizers) gives for a varied text set with four real tokenizers, so that jtune's Java tokenizers
// are checked against an independent implementation.
//
// Run by hand (the Maven build never needs node):
//   cd src-test/src/test/node && npm ci --ignore-scripts && node make_tokenizer_fixture.mjs
// (--ignore-scripts: onnxruntime-node's install script downloads GPU binaries; tokenizers do not need them.)
//
// Everything is read offline from ../shared/data/tokenizers (env.allowRemoteModels = false):
//   llama2  tokenizer.json, with the tokenizer_config.json of the Hub's Llama 2 written next to a copy of it
//   llama3  tokenizer.json + tokenizer_config.json as they are
//   qwen3   tokenizer.json + tokenizer_config.json as they are
//   gpt2    encoder.json + vocab.bpe, turned into the tokenizer.json that GPT-2 has on the Hub (byte-level BPE)
// and, as the oracle for jtune's llama2.c tokenizer, ../shared/data/models/stories260K/tok512.bin converted the way
// Hugging Face converts a SentencePiece BPE model (see tok512TokenizerJson).
//
// For every tokenizer and text the fixture holds `ids` (add_special_tokens false), `idsSpecial`
// (add_special_tokens true) and `decoded`: the decode of `ids` with skip_special_tokens false and
// clean_up_tokenization_spaces false (that clean-up is a transformers option applied after the tokenizer.json
// decoder; jtune decodes what the tokenizer.json decoder gives).

import { AutoTokenizer, env } from '@huggingface/transformers';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../../../..');
const data = path.resolve(repo, '../shared/data/tokenizers');
const output = path.join(repo, 'engine/src/test/resources/fixtures/tokenizer_reference.json');

const TEXTS = [
    'Hello world',
    'The quick brown fox jumps over the lazy dog.',
    'Once upon a time, there was a little girl named Lily. She loved to play outside in the park.',
    'public static void main(String[] args) {\n    System.out.println("Hi, " + args[0] + "!");\n}',
    'def fib(n):\n    if n < 2:\n        return n\n\treturn fib(n - 1) + fib(n - 2)\n',
    'x = [i ** 2 for i in range(10)]  # squares',
    '1234567',
    'pi = 3.14159, e = 2.71828, -0.5e-3',
    'Dates: 2024-01-15, 15/01/2024, Jan. 15th 1999; 12:30:45',
    'a  b   c',
    '   leading spaces',
    'trailing spaces   ',
    '\n\n\n',
    '\t\t',
    'line one\r\nline two\r\n',
    'mixed \t whitespace \n\n  here',
    'Emoji: 😀 👍 ❤️ 🎉',
    'Family: 👨‍👩‍👧‍👦 and flags: 🇫🇷 🇯🇵 🇺🇸',
    '你好，世界！今天天气很好。',
    '日本語のテキストです。한국어 텍스트',
    'مرحبا بالعالم',
    'नमस्ते दुनिया',
    'Café, naïve, résumé, Ångström, Œuvre',
    'cafe\u0301 vs caf\u00e9',
    "I'm, you'll, DON'T, she's, we've, they'd",
    'https://example.com/path?query=1&b=two#frag and www.test.org',
    'email: someone@example.org, cost: $1,234.56 (50% off!)',
    '<s>Hello</s>',
    'Hello <s> world </s> end',
    '<|begin_of_text|>Hi there<|end_of_text|>',
    'Hello<|endoftext|>world',
    '<|endoftext|>',
    '<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n',
    '<unk> and <0x41>',
    '',
    ' ',
    'a',
    '\u2581already has the sentencepiece marker',
    'Symbols: ~!@#$%^&*()_+{}|:"<>? `-=[]\\;\',./',
    'It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of '
        + 'foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the season of Light, '
        + 'it was the season of Darkness, it was the spring of hope, it was the winter of despair, we had '
        + 'everything before us, we had nothing before us, we were all going direct to Heaven, we were all going '
        + 'direct the other way \u2013 in short, the period was so far like the present period, that some of its '
        + 'noisiest authorities insisted on its being received, for good or for evil, in the superlative degree '
        + 'of comparison only.',
];

/** The tokenizer_config.json of meta-llama/Llama-2-7b-hf, reduced to the fields a tokenizer reads. */
const LLAMA2_CONFIG = {
    tokenizer_class: 'LlamaTokenizer',
    add_bos_token: true,
    add_eos_token: false,
    bos_token: '<s>',
    eos_token: '</s>',
    unk_token: '<unk>',
    pad_token: null,
    clean_up_tokenization_spaces: false,
    legacy: false,
};

/** The tokenizer.json of openai-community/gpt2, rebuilt from GPT-2's original encoder.json and vocab.bpe. */
function gpt2TokenizerJson() {
    const vocab = JSON.parse(fs.readFileSync(path.join(data, 'gpt2/encoder.json'), 'utf8'));
    const lines = fs.readFileSync(path.join(data, 'gpt2/vocab.bpe'), 'utf8').split('\n');
    if (!lines[0].startsWith('#version')) throw new Error('gpt2/vocab.bpe does not start with a #version line');
    const merges = lines.slice(1).filter((l) => l.length > 0);
    if (vocab['<|endoftext|>'] !== 50256) throw new Error('gpt2/encoder.json lacks <|endoftext|> = 50256');
    return {
        version: '1.0',
        truncation: null,
        padding: null,
        added_tokens: [{
            id: 50256, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false,
            normalized: true, special: true,
        }],
        normalizer: null,
        pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true },
        post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false },
        decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true },
        model: {
            type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '',
            fuse_unk: false, vocab, merges,
        },
    };
}

/** A few TinyStories-like texts for tok512 (plain text: tok512 has no special tokens that text can name). */
const TOK512_TEXTS = [
    'Once upon a time',
    'Lily and Ben played in the park.',
    'The cat was very happy!',
    'She said, "I want to go home."',
    'Zebra caf\u00e9',
];

/**
 * tok512.bin (llama2.c format: u32 max_token_length, then per token f32 score, i32 length, bytes) as a Hugging Face
 * tokenizer.json laid out like Llama 2's: SentencePiece pieces with "\u2581" for a space, BPE with byte fallback,
 * normalizer Prepend("\u2581") + Replace(" ", "\u2581"), Llama 2's decoder and its BOS template. The merges are what
 * Hugging Face's SentencePiece conversion derives from the scores: every split of a merged piece (id >= 259) into
 * two pieces of the vocabulary, ranked by the merged piece's score, highest first (ties by merged id, then left
 * and right ids). Hugging Face's BPE then applies them; it shares no code with jtune's run.c-style encoder.
 */
function tok512TokenizerJson() {
    const file = path.resolve(data, '../models/stories260K/tok512.bin');
    const bytes = fs.readFileSync(file);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const pieces = [];
    const scores = [];
    for (let at = 4; at < bytes.length;) {
        scores.push(view.getFloat32(at, true));
        const length = view.getInt32(at + 4, true);
        pieces.push(bytes.subarray(at + 8, at + 8 + length).toString('utf8').replaceAll(' ', '\u2581'));
        at += 8 + length;
    }
    if (pieces.length !== 512) throw new Error(`${file} holds ${pieces.length} pieces, expected 512`);
    pieces[1] = '<s>';
    pieces[2] = '</s>';
    const vocab = Object.fromEntries(pieces.map((p, id) => [p, id]));
    const merges = [];
    for (let id = 259; id < pieces.length; id++) {
        const merged = Array.from(pieces[id]);
        for (let cut = 1; cut < merged.length; cut++) {
            const left = merged.slice(0, cut).join('');
            const right = merged.slice(cut).join('');
            if (left in vocab && right in vocab) merges.push({ id, l: vocab[left], r: vocab[right], left, right });
        }
    }
    merges.sort((a, b) => scores[b.id] - scores[a.id] || a.id - b.id || a.l - b.l || a.r - b.r);
    const special = (id, content) => ({
        id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
    });
    return {
        version: '1.0',
        truncation: null,
        padding: null,
        added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
        normalizer: {
            type: 'Sequence',
            normalizers: [
                { type: 'Prepend', prepend: '\u2581' },
                { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' },
            ],
        },
        pre_tokenizer: null,
        post_processor: {
            type: 'TemplateProcessing',
            single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
            pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
                { Sequence: { id: 'B', type_id: 0 } }],
            special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
        },
        decoder: {
            type: 'Sequence',
            decoders: [
                { type: 'Replace', pattern: { String: '\u2581' }, content: ' ' },
                { type: 'ByteFallback' },
                { type: 'Fuse' },
                { type: 'Strip', content: ' ', start: 1, stop: 0 },
            ],
        },
        model: {
            type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null,
            fuse_unk: true, byte_fallback: true, vocab, merges: merges.map((m) => [m.left, m.right]),
        },
    };
}

const GPT2_CONFIG = {
    tokenizer_class: 'GPT2Tokenizer',
    add_prefix_space: false,
    bos_token: '<|endoftext|>',
    eos_token: '<|endoftext|>',
    unk_token: '<|endoftext|>',
    model_max_length: 1024,
    clean_up_tokenization_spaces: false,
};

/** Writes a tokenizer folder (tokenizer.json + tokenizer_config.json) under tmp and returns its path. */
function writeFolder(tmp, name, tokenizerJson, config) {
    const dir = path.join(tmp, name);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson));
    fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(config));
    return dir;
}

function record(tokenizer, texts) {
    return texts.map((text) => {
        const ids = tokenizer.encode(text, { add_special_tokens: false });
        const idsSpecial = tokenizer.encode(text, { add_special_tokens: true });
        const decoded = ids.length === 0 ? ''
            : tokenizer.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
        return { ids, idsSpecial, decoded };
    });
}

async function main() {
    env.allowRemoteModels = false;
    env.allowLocalModels = true;
    env.useFSCache = false;
    env.localModelPath = data;

    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'jtune-tokenizers-'));
    try {
        const llama2Json = JSON.parse(fs.readFileSync(path.join(data, 'llama2/tokenizer.json'), 'utf8'));
        const folders = {
            llama2: writeFolder(tmp, 'llama2', llama2Json, LLAMA2_CONFIG),
            llama3: 'llama3',
            qwen3: 'qwen3',
            gpt2: writeFolder(tmp, 'gpt2', gpt2TokenizerJson(), GPT2_CONFIG),
        };
        const sources = {
            llama2: 'llama2/tokenizer.json with the Hub Llama 2 tokenizer_config.json',
            llama3: 'llama3/tokenizer.json + llama3/tokenizer_config.json',
            qwen3: 'qwen3/tokenizer.json + qwen3/tokenizer_config.json',
            gpt2: 'gpt2/encoder.json + gpt2/vocab.bpe as the Hub gpt2 tokenizer.json',
        };
        const tokenizers = {};
        for (const [name, folder] of Object.entries(folders)) {
            const tokenizer = await AutoTokenizer.from_pretrained(folder, { local_files_only: true });
            tokenizers[name] = { source: sources[name], class: tokenizer.constructor.name, cases: record(tokenizer, TEXTS) };
        }
        const tok512 = await AutoTokenizer.from_pretrained(
            writeFolder(tmp, 'tok512', tok512TokenizerJson(), LLAMA2_CONFIG), { local_files_only: true });
        const pkg = (name) => JSON.parse(fs.readFileSync(path.join(here, 'node_modules', name, 'package.json'), 'utf8'));
        const fixture = {
            generator: 'src-test/src/test/node/make_tokenizer_fixture.mjs',
            library: `@huggingface/transformers ${pkg('@huggingface/transformers').version}`
                + ` (@huggingface/tokenizers ${pkg('@huggingface/tokenizers').version}), node ${process.version}`,
            decode: 'decoded = decode(ids, skip_special_tokens=false, clean_up_tokenization_spaces=false)',
            texts: TEXTS,
            tokenizers,
            tok512: {
                source: '../models/stories260K/tok512.bin converted like a SentencePiece BPE model (tok512TokenizerJson)',
                texts: TOK512_TEXTS,
                cases: record(tok512, TOK512_TEXTS),
            },
        };
        fs.mkdirSync(path.dirname(output), { recursive: true });
        fs.writeFileSync(output, format(fixture));
        console.log(`wrote ${output} (${fs.statSync(output).size} bytes)`);
    } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
    }
}

/**
 * JSON with one text and one case per line, so that a change in the fixture reads as a small diff. Every character
 * outside ASCII is written as a \\u escape, so that no editor can normalize the composed and decomposed texts.
 */
function format(fixture) {
    const lines = ['{'];
    for (const key of ['generator', 'library', 'decode']) lines.push(`  ${JSON.stringify(key)}: ${JSON.stringify(fixture[key])},`);
    lines.push('  "texts": [');
    fixture.texts.forEach((t, i) => lines.push(`    ${JSON.stringify(t)}${i + 1 < fixture.texts.length ? ',' : ''}`));
    lines.push('  ],');
    lines.push('  "tokenizers": {');
    const names = Object.keys(fixture.tokenizers);
    names.forEach((name, n) => {
        const t = fixture.tokenizers[name];
        lines.push(`    ${JSON.stringify(name)}: {`);
        lines.push(`      "source": ${JSON.stringify(t.source)},`);
        lines.push(`      "class": ${JSON.stringify(t.class)},`);
        lines.push('      "cases": [');
        t.cases.forEach((c, i) => lines.push(`        ${JSON.stringify(c)}${i + 1 < t.cases.length ? ',' : ''}`));
        lines.push('      ]');
        lines.push(`    }${n + 1 < names.length ? ',' : ''}`);
    });
    lines.push('  },');
    const tok512 = fixture.tok512;
    lines.push('  "tok512": {');
    lines.push(`    "source": ${JSON.stringify(tok512.source)},`);
    lines.push(`    "texts": ${JSON.stringify(tok512.texts)},`);
    lines.push('    "cases": [');
    tok512.cases.forEach((c, i) => lines.push(`      ${JSON.stringify(c)}${i + 1 < tok512.cases.length ? ',' : ''}`));
    lines.push('    ]');
    lines.push('  }');
    lines.push('}');
    return lines.join('\n').replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`) + '\n';
}

await main();
