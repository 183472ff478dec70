"""Templatification: a chain of (raw text, pairs) entries becomes one pre-training text.

Follows the official post-processing (PAPER.md section 2) with pools written for this project
(`template_pools`). Each entry gets a layout (weights `MULTI_PAIR_WEIGHTS` when every text of
the chain has >= 2 pairs, else `SINGLE_PAIR_WEIGHTS`) and is inverted (pairs before the text)
with probability `INVERSION_RATE`. Options are shuffled with a per-item seed and relabelled,
and the answer's label follows the shuffle. Pairs are parsed into structured items first
(`recovery`).

Everything is deterministic: randomness comes from `random.Random(seed)` only.
"""

from __future__ import annotations

import random
from typing import Callable, Optional, Sequence

from instruct_pt.data.formats import QAPair
from instruct_pt.synthesis import template_pools as pools
from instruct_pt.synthesis.recovery import Structured, is_unanswerable, recover_all

LAYOUTS = ("classic", "dialog", "numbered_questions", "inline_few_shot", "next_turn_dialog")
MULTI_PAIR_WEIGHTS = {"classic": 80, "dialog": 5, "numbered_questions": 5,
                      "inline_few_shot": 5, "next_turn_dialog": 5}
SINGLE_PAIR_WEIGHTS = {"classic": 95, "dialog": 5}
INVERSION_RATE = 0.05
BARE_CONTEXT_RATE = 0.5  # share of entries whose text is not wrapped in a read-start string
NO_COMPREHENSION_START_RATE = 0.5


def render_options(options: Sequence[str], gold: Optional[int],
                   rng: random.Random) -> tuple[str, Optional[str]]:
  """Shuffles and labels the options of one item.

  A "None of the above"-style gold option is replaced by a string of the unanswerable pool.

  Args:
    options: the options in the synthesizer's order.
    gold: index of the correct option in `options`, or None.
    rng: the item's own generator (its seed decides the shuffle and the style).

  Returns:
    The option block (start string, then labelled options) and the gold answer as written in
    the block (`"(b) Paris"`; the bare option for bullet styles), or None without a gold index.
  """
  order = list(range(len(options)))
  rng.shuffle(order)
  texts = [options[index] for index in order]
  if gold is not None and is_unanswerable(options[gold]):
    texts[order.index(gold)] = rng.choice(pools.UNANSWERABLE_OPTIONS)
  alphabet, label_format = rng.choice(pools.OPTION_LABEL_STYLES)
  if alphabet in ("upper", "lower") and len(texts) > 26:
    alphabet = "digit"
  if alphabet == "bullet":
    items, delimiter = [f"{label_format} {text}" for text in texts], "\n"
    answers = texts
  else:
    labels = [label_format.format(_label(alphabet, index)) for index in range(len(texts))]
    items = answers = [f"{label} {text}" for label, text in zip(labels, texts)]
    delimiter = rng.choice(pools.OPTION_DELIMITERS)
  start = rng.choice(pools.OPTION_STARTS)
  body = delimiter.join(items)
  block = f"{start}\n{body}" if start else body
  return block, None if gold is None else answers[order.index(gold)]


def _label(alphabet: str, index: int) -> str:
  if alphabet == "digit":
    return str(index + 1)
  letter = chr(ord("A") + index)
  return letter if alphabet == "upper" else letter.lower()


def _fields(item: Structured, rng: random.Random, show_options: bool) -> dict[str, str]:
  """Template fields of one item; its options are shuffled with a per-item seed."""
  answer = item.answer
  if item.answer_option_index is not None:
    answer = item.options[item.answer_option_index]
  fields = {"question": item.question, "options": "", "answer": answer, "cot": item.cot or ""}
  item_rng = random.Random(rng.getrandbits(64))
  if item.options and show_options:
    block, gold = render_options(item.options, item.answer_option_index, item_rng)
    fields["options"] = block
    fields["answer"] = gold or answer
  return fields


def _classic_pair(item: Structured, rng: random.Random) -> str:
  if item.options:
    pool = pools.QA_OPTIONS_COT if item.cot else pools.QA_OPTIONS + pools.QA_OPTIONS_HIDDEN
  else:
    pool = pools.QA_COT if item.cot else pools.QA
  template = rng.choice(pool)
  q_label, a_label = rng.choice(pools.QUESTION_LABELS)
  fields = _fields(item, rng, show_options="{options}" in template)
  return template.format(q_label=q_label, a_label=a_label, **fields)


def _bare_pair(item: Structured, rng: random.Random) -> tuple[str, str]:
  """(prompt, response) of an item without a QA template, for the non-classic layouts."""
  fields = _fields(item, rng, show_options=True)
  prompt = f"{item.question}\n{fields['options']}" if item.options else item.question
  response = fields["answer"]
  if item.cot:
    prompt = f"{prompt}\n{rng.choice(pools.COT_CUES)}"
    response = f"{item.cot}\n{rng.choice(pools.COT_FINALS).format(answer=response)}"
  return prompt, response


def _dialog_lines(pairs: Sequence[tuple[str, str]], user: str, assistant: str) -> str:
  return "\n".join(f"{user}: {prompt}\n{assistant}: {response}" for prompt, response in pairs)


def _classic(items: Sequence[Structured], rng: random.Random) -> str:
  return "\n\n".join(_classic_pair(item, rng) for item in items)


def _dialog(items: Sequence[Structured], rng: random.Random) -> str:
  user, assistant = rng.choice(pools.DIALOG_SPEAKERS)
  return _dialog_lines([_bare_pair(item, rng) for item in items], user, assistant)


def _numbered_questions(items: Sequence[Structured], rng: random.Random) -> str:
  template = rng.choice(pools.NUMBERED_QUESTIONS)
  number = rng.choice(pools.NUMBER_FORMATS)
  pairs = [_bare_pair(item, rng) for item in items]
  questions = "\n".join(f"{number.format(n)} {p}" for n, (p, _) in enumerate(pairs, 1))
  answers = "\n".join(f"{number.format(n)} {r}" for n, (_, r) in enumerate(pairs, 1))
  return template.format(questions=questions, answers=answers)


def _inline_few_shot(items: Sequence[Structured], rng: random.Random) -> str:
  template = rng.choice(pools.INLINE_FEW_SHOT)
  q_label, a_label = rng.choice(pools.QUESTION_LABELS)
  *examples, (question, answer) = [_bare_pair(item, rng) for item in items]
  shown = "\n\n".join(f"{q_label} {prompt}\n{a_label} {response}"
                      for prompt, response in examples)
  return template.format(examples=shown, question=question, answer=answer)


def _next_turn_dialog(items: Sequence[Structured], rng: random.Random) -> str:
  template = rng.choice(pools.NEXT_TURN_DIALOG)
  user, assistant = rng.choice(pools.DIALOG_SPEAKERS)
  *history, (question, answer) = [_bare_pair(item, rng) for item in items]
  return template.format(history=_dialog_lines(history, user, assistant), user=user,
                         assistant=assistant, question=question, answer=answer)


_RENDERERS: dict[str, Callable[[Sequence[Structured], random.Random], str]] = {
    "classic": _classic, "dialog": _dialog, "numbered_questions": _numbered_questions,
    "inline_few_shot": _inline_few_shot, "next_turn_dialog": _next_turn_dialog}


def _render_entry(text: str, items: Sequence[Structured], layout: str, inverted: bool,
                  rng: random.Random) -> str:
  """One text with its templated pairs; the raw text alone when it has no pairs."""
  if not items:
    return text
  pairs = _RENDERERS[layout](items, rng)
  if inverted:
    qa_start = rng.choice(pools.INVERTED_QA_STARTS)
    text_start = rng.choice(pools.INVERTED_TEXT_STARTS)
    return "\n\n".join((_prefixed(qa_start, pairs), _prefixed(text_start, text)))
  read = "{context}"
  if rng.random() >= BARE_CONTEXT_RATE:
    read = rng.choice(pools.READ_STARTS)
  comprehension = ""
  if rng.random() >= NO_COMPREHENSION_START_RATE:
    comprehension = rng.choice(pools.COMPREHENSION_STARTS)
  return "\n\n".join(p for p in (read.format(context=text), comprehension, pairs) if p)


def _prefixed(start: str, body: str) -> str:
  return f"{start}\n{body}" if start else body


def plan_layouts(pair_counts: Sequence[int], rng: random.Random) -> list[tuple[str, bool]]:
  """Draws (layout, inverted) for each entry of a chain.

  Args:
    pair_counts: the number of recovered pairs of each entry.
    rng: the chain's generator (`templatify` passes `random.Random(seed)`).

  Returns:
    One `(layout, inverted)` per entry: `MULTI_PAIR_WEIGHTS` when every entry has >= 2 pairs,
    else `SINGLE_PAIR_WEIGHTS`; inverted with probability `INVERSION_RATE`.
  """
  multi = bool(pair_counts) and all(count >= 2 for count in pair_counts)
  weights = MULTI_PAIR_WEIGHTS if multi else SINGLE_PAIR_WEIGHTS
  names, values = list(weights), list(weights.values())
  return [(rng.choices(names, values)[0], rng.random() < INVERSION_RATE) for _ in pair_counts]


def templatify(chain: Sequence[tuple[str, Sequence[QAPair]]], seed: int) -> str:
  """Assembles a chain of (raw text, pairs) entries into ONE pre-training text.

  Each text is followed by its templated pairs (preceded on inversion); a text without valid
  pairs is emitted raw; entries are joined by `ENTRY_SEPARATOR`. Malformed CoT pairs are dropped
  (use `recover_all` to count them).

  Args:
    chain: the entries of one multi-round conversion, earliest round first.
    seed: the only source of randomness; equal seeds give equal texts.
  """
  rng = random.Random(seed)
  entries = [(text, recover_all(pairs)[0]) for text, pairs in chain]
  plans = plan_layouts([len(items) for _, items in entries], rng)
  return pools.ENTRY_SEPARATOR.join(
      _render_entry(text, items, layout, inverted, rng)
      for (text, items), (layout, inverted) in zip(entries, plans))
