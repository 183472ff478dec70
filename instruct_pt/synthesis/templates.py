"""Templatification: a chain of synthesized entries becomes pre-training texts (official units).

The official `cook_pt_entries` (PAPER.md section 2), with our pools (`template_pools`):

* **Output texts.** A chain's entries form *groups*: a group starts at every entry that does
  not continue its predecessor (`Entry.linked`: the previous entry's prompt history was kept
  and this entry yielded parsed pairs; the official `inherit_from_prev`). Each group becomes one
  text, its entries joined by the text's entry separator; an entry left without pairs after
  format recovery is emitted as its own raw text, after its group's text (latest first, as
  officially). A group without any pairs gives no text (the official code emits an empty
  string there).
* **Sampling units.** Per *text* (the official read collection): one pattern per kind of pair
  (plain / options / CoT / options + CoT), whether option lists are hidden (half the texts:
  the options pattern is then a plain one, answered with the option's text), one option style
  (start string, label set, item end), the string that writes an unanswerable answer, and the
  separators between pairs and between entries. Per *group*: the layout (Classic 80, Dialog
  5, Numbered questions 5, Inline few-shot 5, Next-turn dialog 5 when every entry of the group
  has >= 2 pairs, else Classic 95, Dialog 5), inversion (5% of Classic and Dialog groups: the
  pairs before the text), and the layout's strings (read start and end, comprehension start,
  dialog speakers, ...). Per *pair*: only the shuffle of its options.
* **Options.** Written `start + item + option + end` for each option, shuffled with the
  pair's own seed; the answer is the matching option's label alone (`B.`, `(2)`), or for
  bullet labels the option's text; an answer that is an unanswerable string and no option is
  written as the text's unanswerable string. Pairs whose answer matches nothing were already
  dropped by `recovery.recover`.

Deviation, on purpose: the official code re-seeds its generator with the same seed before
every draw, so all of a text's draws are correlated (for instance its inversion and layout
come from one number, so only Classic groups are ever inverted). Here the draws come from one
`random.Random(seed)` stream and are independent; units and probabilities are the official
ones. Everything is deterministic given the seed.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Sequence

from instruct_pt.data.formats import QAPair
from instruct_pt.synthesis import recovery
from instruct_pt.synthesis import template_pools as pools
from instruct_pt.synthesis.recovery import Structured

LAYOUTS = ("classic", "dialog", "numbered_questions", "inline_few_shot", "next_turn_dialog")
# Layout weights of a group whose entries all have >= 2 pairs, and of any other group.
MULTI_PAIR_WEIGHTS = {"classic": 80, "dialog": 5, "numbered_questions": 5,
                      "inline_few_shot": 5, "next_turn_dialog": 5}
SINGLE_PAIR_WEIGHTS = {"classic": 95, "dialog": 5}
# Share of Classic and Dialog groups written inverted (pairs before the text).
INVERSION_RATE = 0.05
INVERTIBLE_LAYOUTS = ("classic", "dialog")
HIDDEN_OPTIONS_RATE = 0.5
# The pattern an Inline few-shot text writes a CoT pair with (its rationale shown apart).
_WITHOUT_COT = {"cot": "plain", "options_cot": "options"}


@dataclasses.dataclass(frozen=True)
class Entry:
  """One synthesized text of a chain.

  Attributes:
    text: the raw text.
    pairs: the pairs parsed from its output.
    linked: whether it continues the previous entry's group (the official `inherit_from_prev`).
  """

  text: str
  pairs: Sequence[QAPair]
  linked: bool = False


@dataclasses.dataclass(frozen=True)
class Output:
  """One pre-training text.

  Attributes:
    text: the text.
    entries: indices of the chain's entries it holds, in order.
  """

  text: str
  entries: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Pattern:
  """How one pair is written: `inputs_prefix inputs delimiter targets_prefix targets`."""

  inputs_prefix: str
  inputs: str
  delimiter: str
  targets_prefix: str
  targets: str

  def render(self, fields: dict[str, str]) -> str:
    """The pair written with `fields` (question, answer, options, option_answer, cot)."""
    return (self.inputs_prefix + self.inputs.format(**fields) + self.delimiter
            + self.targets_prefix + self.targets.format(**fields))


_MODE_PARTS = {  # mode -> (inputs pool, targets pool)
    "plain": (pools.QA_INPUTS, pools.QA_TARGETS),
    "options": (pools.OPTION_INPUTS, pools.OPTION_TARGETS),
    "cot": (pools.COT_INPUTS, pools.COT_TARGETS),
    "options_cot": (pools.OPTION_COT_INPUTS, pools.OPTION_COT_TARGETS),
}


@dataclasses.dataclass(frozen=True)
class TextStyle:
  """What is drawn once per text (see the module docstring)."""

  patterns: dict[str, Pattern]
  hidden_options: bool
  option_start: str
  option_lead: str
  option_labels: tuple[str, str]  # (alphabet, format) of `pools.OPTION_LABEL_STYLES`
  option_end: str
  unanswerable: str
  pair_separator: str
  entry_separator: str


def draw_text_style(rng: random.Random) -> TextStyle:
  """Draws the per-text choices.

  Args:
    rng: the text's generator.
  """
  patterns = {}
  for mode, (inputs, targets) in _MODE_PARTS.items():
    inputs_prefix, targets_prefix = rng.choice(pools.QA_PREFIXES)
    patterns[mode] = Pattern(inputs_prefix, rng.choice(inputs), rng.choice(pools.DELIMITERS),
                             targets_prefix, rng.choice(targets))
  hidden = rng.random() < HIDDEN_OPTIONS_RATE
  if hidden:
    patterns["options"] = dataclasses.replace(patterns["plain"])
  separators = rng.choices(pools.SEPARATORS, pools.SEPARATOR_WEIGHTS, k=2)
  return TextStyle(
      patterns=patterns, hidden_options=hidden, option_start=rng.choice(pools.OPTION_STARTS),
      option_lead=rng.choice(pools.OPTION_LEADS), option_labels=rng.choice(
          pools.OPTION_LABEL_STYLES),
      option_end=rng.choices(pools.OPTION_ENDS, pools.OPTION_END_WEIGHTS)[0],
      unanswerable=rng.choice(pools.UNANSWERABLE_OPTIONS), pair_separator=separators[0],
      entry_separator=separators[1])


def draw_layout(min_pairs: int, rng: random.Random) -> tuple[str, bool]:
  """(layout, inverted) of a group whose entries have at least `min_pairs` pairs each.

  Args:
    min_pairs: the fewest recovered pairs of an entry of the group (0 for a pair-less one).
    rng: the text's generator.
  """
  weights = MULTI_PAIR_WEIGHTS if min_pairs >= 2 else SINGLE_PAIR_WEIGHTS
  layout = rng.choices(list(weights), list(weights.values()))[0]
  return layout, layout in INVERTIBLE_LAYOUTS and rng.random() < INVERSION_RATE


def _draw_group(min_pairs: int, text: TextStyle, rng: random.Random) -> dict:
  """The per-group choices: layout, inversion and the layout's strings."""
  layout, inverted = draw_layout(min_pairs, rng)
  group = {"layout": layout, "inverted": inverted, "patterns": text.patterns,
           "separator": text.pair_separator}
  if inverted:
    group.update(qa_start=rng.choice(pools.INVERTED_QA_STARTS),
                 qa_end=rng.choice(pools.INVERTED_QA_ENDS),
                 text_start=rng.choice(pools.INVERTED_TEXT_STARTS))
  if layout == "classic":
    read_start = "{context}"
    if rng.random() >= pools.BARE_READ_RATE:
      read_start = rng.choice(pools.READ_STARTS)
    compre_start = ""
    if rng.random() >= pools.NO_COMPREHENSION_RATE:
      compre_start = rng.choice(pools.COMPREHENSION_STARTS)
    read_end = rng.choice(pools.READ_ENDS) if compre_start else ""
    group.update(read_start=read_start, read_end=read_end, compre_start=compre_start)
  elif layout in ("dialog", "next_turn_dialog"):
    user, assistant = rng.choice(pools.DIALOG_SPEAKERS)
    group["dialog_start"] = rng.choice(pools.DIALOG_JOINS) + rng.choice(pools.DIALOG_STARTS)
    group["separator"] = rng.choice(pools.DIALOG_SEPARATORS)
    group["patterns"] = {mode: dataclasses.replace(
        pattern, inputs_prefix=f"\n{user}: ", delimiter="", targets_prefix=f"\n{assistant}: ")
                         for mode, pattern in text.patterns.items()}
    group["next_turn"] = rng.choice(pools.NEXT_TURN_DIALOG)
  elif layout == "numbered_questions":
    group.update(number=rng.choice(pools.NUMBER_FORMATS),
                 template=rng.choice(pools.NUMBERED_QUESTIONS))
  else:  # inline_few_shot
    group.update(template=rng.choice(pools.INLINE_FEW_SHOT),
                 example=rng.choice(pools.INLINE_EXAMPLES),
                 explained=rng.choice(pools.INLINE_EXPLAINED_EXAMPLES),
                 test=rng.choice(pools.INLINE_TESTS))
  return group


def render_options(item: Structured, text: TextStyle, rng: random.Random) -> tuple[str, str]:
  """The option block of `item` and its answer as written (label, or text for bullets).

  Args:
    item: a pair with options whose answer matches one of them or is an unanswerable string
      (as `recovery.recover` keeps).
    text: the text's choices (option style, unanswerable string).
    rng: the text's generator (draws the item's own shuffle seed).
  """
  options = list(item.options)
  random.Random(rng.getrandbits(64)).shuffle(options)
  alphabet, label_format = text.option_labels
  labels = [label_format if alphabet == "bullet" else label_format.format(_label(alphabet, i))
            for i in range(len(options))]
  block = text.option_start + "".join(f"{text.option_lead}{label} {option}{text.option_end}"
                                      for label, option in zip(labels, options))
  stripped = [option.strip() for option in options]
  if item.answer.strip() in stripped:
    index = stripped.index(item.answer.strip())
    return block, options[index].strip() if alphabet == "bullet" else labels[index]
  return block, text.unanswerable


def _label(alphabet: str, index: int) -> str:
  if alphabet == "digit" or index >= 26:
    return str(index + 1)
  letter = chr(ord("A") + index)
  return letter if alphabet == "upper" else letter.lower()


def _fields(item: Structured, text: TextStyle, rng: random.Random) -> dict[str, str]:
  fields = {"question": item.question, "answer": item.answer, "cot": item.cot or "",
            "options": "", "option_answer": item.answer}
  if item.options is not None:
    fields["options"], fields["option_answer"] = render_options(item, text, rng)
  return fields


def _render_entry(context: str, items: Sequence[Structured], group: dict, text: TextStyle,
                  rng: random.Random) -> str:
  """One entry with its pairs in the group's layout (the official `format_one_pt_rc`)."""
  fields = [_fields(item, text, rng) for item in items]
  patterns = group["patterns"]
  layout = group["layout"]
  if layout in ("classic", "dialog"):
    pairs = group["separator"].join(patterns[item.mode].render(f)
                                    for item, f in zip(items, fields))
    if group["inverted"]:
      return (group["qa_start"].format(pairs=pairs) + group["qa_end"]
              + group["text_start"].format(context=context))
    if layout == "classic":
      head = (group["read_start"].format(context=context) + group["read_end"]
              + group["compre_start"])
    else:
      head = context + group["dialog_start"]
    return head + group["separator"] + pairs
  if layout == "next_turn_dialog":
    turns = [patterns[item.mode].render(f) for item, f in zip(items, fields)]
    history = "".join(group["separator"] + turn for turn in turns[:-1])
    return group["next_turn"].format(context=context, history=history, next_turn=turns[-1])
  if layout == "numbered_questions":
    numbers = [group["number"].format(n) for n in range(1, len(items) + 1)]
    questions = "".join(n + patterns[i.mode].inputs.format(**f)
                        for n, i, f in zip(numbers, items, fields))
    answers = "".join(n + patterns[i.mode].targets.format(**f)
                      for n, i, f in zip(numbers, items, fields))
    return group["template"].format(context=context, questions=questions, answers=answers)
  # inline_few_shot: CoT pairs use their mode's pattern without CoT; the explaining example
  # template (used when every pair has a rationale) shows the rationale after the answer.
  explained = all(item.cot is not None for item in items)
  example = group["explained"] if explained else group["example"]
  written = []
  for item, f in zip(items, fields):
    pattern = patterns[_WITHOUT_COT.get(item.mode, item.mode)]
    written.append({"input": pattern.inputs.format(**f), "output": pattern.targets.format(**f),
                    "explanation": item.cot or ""})
  examples = "".join(example.format(**w) for w in written[:-1])
  return group["template"].format(context=context, examples=examples,
                                  test=group["test"].format(**written[-1]))


def templatify(entries: Sequence[Entry], seed: int) -> list[Output]:
  """The pre-training texts of one chain (see the module docstring).

  Args:
    entries: the chain's entries, earliest round first.
    seed: the only source of randomness; equal seeds give equal texts.

  Returns:
    The texts, in the official order: each group's text, then its pair-less entries.
  """
  rng = random.Random(seed)
  text = draw_text_style(rng)
  items = [recovery.recover_all(entry.pairs)[0] for entry in entries]
  groups: list[list[int]] = []
  for index, entry in enumerate(entries):
    if entry.linked and groups:
      groups[-1].append(index)
    else:
      groups.append([index])
  outputs = []
  for group in groups:
    style = _draw_group(min(len(items[i]) for i in group), text, rng)
    with_pairs = [i for i in group if items[i]]
    if with_pairs:
      rendered = [_render_entry(entries[i].text, items[i], style, text, rng) for i in with_pairs]
      outputs.append(Output(text.entry_separator.join(rendered), tuple(with_pairs)))
    outputs += [Output(entries[i].text, (i,)) for i in reversed(group) if not items[i]]
  return outputs

