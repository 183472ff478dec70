"""Templatification: a chain of synthesized entries becomes pre-training texts (official units).

The official `cook_pt_entries` / `format_one_pt_rc` (docs/design.md s.2), in two modes (`MODES`,
from `SynthesisConfig.post_processing`):

* **official**: the release rule by rule. Its pools (`template_official`,
  `template_official_patterns`), and its draws: the release re-seeds before every draw, so each
  choice is the *first* draw of a fresh `random.Random(seed)` (`seed + 1` for the entry
  separator, `seed * i` for the shuffle of pair i's options), by the release's method over a pool
  of the release's size and order. Its choices are therefore correlated, as the release's: one
  number decides layout and inversion (only Classic groups are inverted: 5 in 80, or in 95, and
  no Dialog group), and one decides read start and comprehension start (a bare text with no
  comprehension start is about 8% of Classic groups). A chain's groups share the seed, so they
  share their choices, and a Dialog group's speakers stay in the patterns of the chain's earlier
  groups (the release changes its patterns in place). Options beyond the 26 item names are not
  written, and a pair whose gold option is one of them is dropped, as the release does.
* **filtered** (ours): our pools (`template_pools`: thousands of patterns per kind of pair, all
  question -> answer, none with a label stacked on the targets prefix), drawn independently from
  one `random.Random(seed)` stream, with the release's units and marginal rates; one separator
  between pairs per text; ours label every option.

In both:

* **Output texts.** A chain's entries form *groups*: a group starts at every entry that does
  not continue its predecessor (`Entry.linked`: the previous entry's prompt history was kept
  and this entry yielded parsed pairs; the official `inherit_from_prev`). Each group becomes one
  text, its entries joined by the text's entry separator; an entry left without pairs after
  format recovery is emitted as its own raw text, after its group's text (latest first, as
  officially). A group without any pairs gives no text (the official code emits an empty
  string there).
* **Sampling units.** Per *text*: one pattern per kind of pair (plain / options / CoT / options +
  CoT; half the options patterns leave the options out, answered with the option's text), the
  option format (start, item names, item ends), the unanswerable string and the entry separator.
  Per *group*: the layout (Classic 80, Dialog 5, Numbered questions 5, Inline few-shot 5,
  Next-turn dialog 5 when every entry of the group has >= 2 pairs, else Classic 95, Dialog 5),
  inversion (5%: the pairs before the text) and the layout's strings. Per *pair*: the shuffle of
  its options.
* **Rendering.** A pair is its pattern's five parts joined; pairs are joined, and a Classic or
  Dialog head is followed, by the separator of the last pair's pattern. Options are written
  `start + item name + option + item end`; the answer is the gold option's item name stripped
  (`B.`, `(ii)`), or for bullets its text; an answer that is an unanswerable string and no option
  is written as the text's unanswerable string. Inline few-shot texts write CoT pairs with their
  kind's pattern without CoT and switch to the explaining pattern when every pair has a
  rationale.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Optional, Sequence

from instruct_pt.data.formats import QAPair
from instruct_pt.synthesis import recovery
from instruct_pt.synthesis import template_official as official
from instruct_pt.synthesis import template_official_patterns as official_patterns
from instruct_pt.synthesis import template_pools as pools
from instruct_pt.synthesis.recovery import Structured

MODES = ("official", "filtered")
LAYOUTS = ("classic", "dialog", "numbered_questions", "inline_few_shot", "next_turn_dialog")
# Layout weights of a group whose entries all have >= 2 pairs, and of any other group.
MULTI_PAIR_WEIGHTS = {"classic": 80, "dialog": 5, "numbered_questions": 5,
                      "inline_few_shot": 5, "next_turn_dialog": 5}
SINGLE_PAIR_WEIGHTS = {"classic": 95, "dialog": 5}
# The release draws inversion as True 5 : False 95, from the number its layout comes from; ours
# inverts 5% of Classic and Dialog groups.
INVERSION_WEIGHTS = {True: 5, False: 95}
INVERSION_RATE = 0.05
INVERTIBLE_LAYOUTS = ("classic", "dialog")
HIDDEN_OPTIONS_RATE = 0.5
# The pattern an Inline few-shot text writes a CoT pair with (its rationale shown apart).
_WITHOUT_COT = {"cot": "plain", "options_cot": "options"}
_OFFICIAL_PATTERNS = {"plain": official_patterns.PLAIN, "options": official_patterns.OPTIONS,
                      "cot": official_patterns.COT, "options_cot": official_patterns.OPTIONS_COT}


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
  """How one pair is written (`inputs_prefix inputs delimiter targets_prefix targets`), and the
  separator that follows the pairs when it is the last pair's."""

  inputs_prefix: str
  inputs: str
  delimiter: str
  targets_prefix: str
  targets: str
  separator: str

  def render(self, fields: dict[str, str]) -> str:
    """The pair written with `fields` (question, answer, options, option_answer, cot)."""
    return (self.inputs_prefix + self.inputs + self.delimiter + self.targets_prefix
            + self.targets).format(**fields)


@dataclasses.dataclass(frozen=True)
class OptionStyle:
  """How an option block is written: `start`, then `items[i] + option + ends[i]` per option.

  Attributes:
    labelled: whether the item names are labels (the answer is then the gold one, stripped).
  """

  start: str
  items: Sequence[str]
  ends: Sequence[str]
  labelled: bool


@dataclasses.dataclass(frozen=True)
class InlinePattern:
  """An Inline few-shot text: `template` ({context}{examples}{test}); each solved pair is
  `example` ({input}, {output}, {explanation}), the last pair `test` ({input}, {output})."""

  template: str
  example: str
  test: str


@dataclasses.dataclass(frozen=True)
class TextStyle:
  """What is drawn once per text (see the module docstring)."""

  patterns: dict[str, Pattern]
  options: OptionStyle
  unanswerable: str
  entry_separator: str


@dataclasses.dataclass(frozen=True)
class GroupStyle:
  """What is drawn once per group: the layout, its patterns and the strings it writes.

  Attributes:
    inversion: (pairs start `{pairs}`, pairs end, text start `{context}`) when inverted.
    read: (read start `{context}`, read end, comprehension start) of a Classic group.
    inline: the (explaining, plain) patterns of an Inline few-shot group.
  """

  layout: str
  patterns: dict[str, Pattern]
  inverted: bool = False
  inversion: tuple[str, str, str] = ("{pairs}", "", "{context}")
  read: tuple[str, str, str] = ("{context}", "", "")
  dialog_start: str = ""
  next_turn: str = ""
  numbered: str = ""
  number_items: Sequence[str] = ()
  number_ends: Sequence[str] = ()
  inline: Optional[tuple[InlinePattern, InlinePattern]] = None


def _dialog_patterns(patterns: dict[str, Pattern], speakers: tuple[str, str], end: str,
                     separator: str) -> dict[str, Pattern]:
  asker, answerer = speakers
  return {mode: dataclasses.replace(pattern, inputs_prefix=asker, delimiter=end,
                                    targets_prefix=answerer, separator=separator)
          for mode, pattern in patterns.items()}


# ---- Official mode: the release's draws ---------------------------------------------------


def _first(seed: int, pool: Sequence):
  """The release's draw: the first choice of a generator seeded afresh."""
  return random.Random(seed).choice(pool)


def _first_weighted(seed: int, weights: dict):
  return random.Random(seed).choices(list(weights), list(weights.values()))[0]


def official_text_style(seed: int) -> TextStyle:
  """The release's per-text choices (`cook_pt_entries`).

  Args:
    seed: the chain's seed.
  """
  items = _first(seed, official.OPTION_ITEMS)
  return TextStyle(
      patterns={mode: Pattern(*_first(seed, pool)) for mode, pool in _OFFICIAL_PATTERNS.items()},
      options=OptionStyle(_first(seed, official.OPTION_STARTS), items,
                          _first(seed, official.OPTION_ITEM_ENDS),
                          labelled=len(set(items)) == len(items)),
      unanswerable=_first(seed, pools.UNANSWERABLE_OPTIONS),
      entry_separator=Pattern(*_first(seed + 1, official_patterns.PLAIN)).separator)


def official_group_style(seed: int, min_pairs: int, patterns: dict[str, Pattern]) -> GroupStyle:
  """The release's per-group choices (`get_patterns`).

  Args:
    seed: the chain's seed.
    min_pairs: the fewest pairs of an entry of the group (0 for a pair-less one).
    patterns: the patterns as the chain's later group left them.
  """
  layout = _first_weighted(seed, MULTI_PAIR_WEIGHTS if min_pairs >= 2 else SINGLE_PAIR_WEIGHTS)
  inverted = _first_weighted(seed, INVERSION_WEIGHTS)
  inversion = (_first(seed, official.INVERTED_QA_STARTS), _first(seed, official.INVERTED_QA_ENDS),
               _first(seed, official.INVERTED_TEXT_STARTS))
  style = GroupStyle(layout, patterns, inverted, inversion)
  if layout == "classic":
    return dataclasses.replace(style, read=(
        _first(seed, official.READ_STARTS), _first(seed, official.READ_ENDS),
        _first(seed, official.COMPREHENSION_STARTS)))
  if layout in ("dialog", "next_turn_dialog"):
    dialog = _dialog_patterns(patterns, _first(seed, official.DIALOG_SPEAKERS[::-1]),
                              _first(seed, official.DIALOG_ENDS),
                              _first(seed, official.DIALOG_SEPARATORS))
    return dataclasses.replace(
        style, patterns=dialog, next_turn=_first(seed, official.NEXT_TURN_DIALOG),
        dialog_start=_first(seed, official.DIALOG_JOINS) + _first(seed, official.DIALOG_STARTS))
  if layout == "numbered_questions":
    return dataclasses.replace(style, numbered=_first(seed, official.NUMBERED_QUESTIONS),
                               number_items=_first(seed, official.NUMBERED_ITEMS),
                               number_ends=_first(seed, official.OPTION_ITEM_ENDS[::-1]))
  return dataclasses.replace(style, inline=(InlinePattern(*_first(seed, official.INLINE_EXPLAINED)),
                                            InlinePattern(*_first(seed, official.INLINE_PLAIN))))


# ---- Filtered mode: our pools, independent draws -------------------------------------------

_OUR_PATTERN_PARTS = {  # mode -> (inputs pool, targets pool)
    "plain": (pools.QA_INPUTS, pools.QA_TARGETS),
    "options": (pools.OPTION_INPUTS, pools.OPTION_TARGETS),
    "cot": (pools.COT_INPUTS, pools.COT_TARGETS),
    "options_cot": (pools.OPTION_COT_INPUTS, pools.OPTION_COT_TARGETS),
}


def our_option_style(start: str, lead: str, label_style: tuple[str, str], end: str,
                     count: int) -> OptionStyle:
  """Our option format for `count` options.

  Args:
    start: the block's start string (`pools.OPTION_STARTS`).
    lead: what comes before each label (`pools.OPTION_LEADS`).
    label_style: (alphabet, format) of `pools.OPTION_LABEL_STYLES`.
    end: what ends each option (`pools.OPTION_ENDS`).
    count: how many options to name.
  """
  alphabet, label_format = label_style
  labels = [label_format if alphabet == "bullet" else label_format.format(_label(alphabet, i))
            for i in range(count)]
  return OptionStyle(start, tuple(f"{lead}{label} " for label in labels), (end,) * count,
                     labelled=alphabet != "bullet")


def _label(alphabet: str, index: int) -> str:
  if alphabet == "digit" or index >= 26:
    return str(index + 1)
  letter = chr(ord("A") + index)
  return letter if alphabet == "upper" else letter.lower()


def draw_text_style(rng: random.Random, most_options: int) -> TextStyle:
  """Our per-text choices.

  Args:
    rng: the text's generator.
    most_options: the most options of a pair of the chain (each gets an item name).
  """
  separator, entry_separator = rng.choices(pools.SEPARATORS, pools.SEPARATOR_WEIGHTS, k=2)
  patterns = {}
  for mode, (inputs, targets) in _OUR_PATTERN_PARTS.items():
    inputs_prefix, targets_prefix = rng.choice(pools.QA_PREFIXES)
    patterns[mode] = Pattern(inputs_prefix, rng.choice(inputs), rng.choice(pools.DELIMITERS),
                             targets_prefix, rng.choice(targets), separator)
  if rng.random() < HIDDEN_OPTIONS_RATE:
    patterns["options"] = patterns["plain"]
  options = our_option_style(
      rng.choice(pools.OPTION_STARTS), rng.choice(pools.OPTION_LEADS),
      rng.choice(pools.OPTION_LABEL_STYLES),
      rng.choices(pools.OPTION_ENDS, pools.OPTION_END_WEIGHTS)[0], most_options)
  return TextStyle(patterns, options, rng.choice(pools.UNANSWERABLE_OPTIONS), entry_separator)


def draw_layout(min_pairs: int, rng: random.Random) -> tuple[str, bool]:
  """Our (layout, inverted) of a group whose entries have at least `min_pairs` pairs each.

  Args:
    min_pairs: the fewest recovered pairs of an entry of the group (0 for a pair-less one).
    rng: the text's generator.
  """
  weights = MULTI_PAIR_WEIGHTS if min_pairs >= 2 else SINGLE_PAIR_WEIGHTS
  layout = rng.choices(list(weights), list(weights.values()))[0]
  return layout, layout in INVERTIBLE_LAYOUTS and rng.random() < INVERSION_RATE


def _draw_group(min_pairs: int, most_pairs: int, text: TextStyle,
                rng: random.Random) -> GroupStyle:
  """Our per-group choices: layout, inversion and the layout's strings."""
  layout, inverted = draw_layout(min_pairs, rng)
  style = GroupStyle(layout, text.patterns, inverted)
  if inverted:
    style = dataclasses.replace(style, inversion=(
        rng.choice(pools.INVERTED_QA_STARTS), rng.choice(pools.INVERTED_QA_ENDS),
        rng.choice(pools.INVERTED_TEXT_STARTS)))
  if layout == "classic":
    read_start = "{context}"
    if rng.random() >= pools.BARE_READ_RATE:
      read_start = rng.choice(pools.READ_STARTS)
    compre_start = ""
    if rng.random() >= pools.NO_COMPREHENSION_RATE:
      compre_start = rng.choice(pools.COMPREHENSION_STARTS)
    return dataclasses.replace(style, read=(read_start, rng.choice(pools.READ_ENDS), compre_start))
  if layout in ("dialog", "next_turn_dialog"):
    user, assistant = rng.choice(pools.DIALOG_SPEAKERS)
    dialog_start = rng.choice(pools.DIALOG_JOINS) + rng.choice(pools.DIALOG_STARTS)
    dialog = _dialog_patterns(text.patterns, (f"\n{user}: ", f"\n{assistant}: "), "",
                              rng.choice(pools.DIALOG_SEPARATORS))
    return dataclasses.replace(style, patterns=dialog, dialog_start=dialog_start,
                               next_turn=rng.choice(pools.NEXT_TURN_DIALOG))
  if layout == "numbered_questions":
    number = rng.choice(pools.NUMBER_FORMATS)
    return dataclasses.replace(
        style, numbered=rng.choice(pools.NUMBERED_QUESTIONS),
        number_items=tuple(number.format(n) for n in range(1, most_pairs + 1)),
        number_ends=("",) * most_pairs)
  template, test = rng.choice(pools.INLINE_FEW_SHOT), rng.choice(pools.INLINE_TESTS)
  plain = InlinePattern(template, rng.choice(pools.INLINE_EXAMPLES), test)
  explained = dataclasses.replace(plain, example=rng.choice(pools.INLINE_EXPLAINED_EXAMPLES))
  return dataclasses.replace(style, inline=(explained, plain))


# ---- Rendering (both modes) ----------------------------------------------------------------


def render_options(item: Structured, text: TextStyle,
                   shuffle_seed: int) -> Optional[tuple[str, str]]:
  """The option block of `item` and its answer as written, or None when the pair is dropped.

  Args:
    item: a pair with options whose answer matches one of them or is an unanswerable string
      (as `recovery.recover` keeps).
    text: the text's choices (option format, unanswerable string).
    shuffle_seed: seeds the shuffle of the options.

  Returns:
    (block, answer), or None when the gold option has no item name (the release drops it).
  """
  options = list(item.options)
  random.Random(shuffle_seed).shuffle(options)
  style = text.options
  block = style.start + "".join(f"{name}{option}{end}"
                                for name, option, end in zip(style.items, options, style.ends))
  if item.answer not in options and recovery.is_unanswerable_option(item.answer):
    return block, text.unanswerable
  if not style.labelled:
    return block, item.answer
  index = [option.strip() for option in options].index(item.answer.strip())
  return (block, style.items[index].strip()) if index < len(style.items) else None


def _fields(item: Structured, text: TextStyle, shuffle_seed: int) -> Optional[dict[str, str]]:
  fields = {"question": item.question, "answer": item.answer, "cot": item.cot or "",
            "options": "", "option_answer": item.answer}
  if item.options is not None:
    rendered = render_options(item, text, shuffle_seed)
    if rendered is None:
      return None
    fields["options"], fields["option_answer"] = rendered
  return fields


def render_entry(context: str, pairs: Sequence[tuple[Structured, dict[str, str]]],
                 group: GroupStyle) -> str:
  """One entry with its pairs in the group's layout (the official `format_one_pt_rc`).

  Args:
    context: the entry's raw text.
    pairs: its pairs and their fields (question, answer, options, option_answer, cot).
    group: the group's choices.
  """
  patterns = group.patterns
  if group.layout in ("classic", "dialog"):
    separator = patterns[pairs[-1][0].mode].separator
    written = separator.join(patterns[item.mode].render(fields) for item, fields in pairs)
    if group.inverted:
      qa_start, qa_end, text_start = group.inversion
      return (qa_start.replace("{pairs}", written) + qa_end
              + text_start.replace("{context}", context))
    if group.layout == "dialog":
      return context + group.dialog_start + separator + written
    read_start, read_end, compre_start = group.read
    return (read_start.replace("{context}", context) + (read_end if compre_start else "")
            + compre_start + separator + written)
  if group.layout == "next_turn_dialog":
    history = "".join(patterns[item.mode].separator + patterns[item.mode].render(fields)
                      for item, fields in pairs[:-1])
    last, last_fields = pairs[-1]
    return group.next_turn.format(context=context, history=history,
                                  next_turn=patterns[last.mode].render(last_fields))
  if group.layout == "numbered_questions":
    numbered = list(zip(group.number_items, group.number_ends, pairs))
    questions = "".join(name + patterns[item.mode].inputs.format(**fields) + end
                        for name, end, (item, fields) in numbered)
    answers = "".join(name + patterns[item.mode].targets.format(**fields) + end
                      for name, end, (item, fields) in numbered)
    return group.numbered.format(context=context, questions=questions, answers=answers)
  explained, plain = group.inline
  inline = explained if all(item.cot is not None for item, _ in pairs) else plain
  written = []
  for item, fields in pairs:
    pattern = patterns[_WITHOUT_COT.get(item.mode, item.mode)]
    written.append({"input": pattern.inputs.format(**fields),
                    "output": pattern.targets.format(**fields), "explanation": item.cot or ""})
  examples = "".join(inline.example.format(**example) for example in written[:-1])
  return inline.template.format(context=context, examples=examples,
                                test=inline.test.format(**written[-1]))


def templatify(entries: Sequence[Entry], seed: int, mode: str) -> list[Output]:
  """The pre-training texts of one chain (see the module docstring).

  Args:
    entries: the chain's entries, earliest round first.
    seed: the only source of randomness; equal seeds give equal texts.
    mode: "official" (the release's pools and draws) or "filtered" (ours).

  Returns:
    The texts, in the official order: each group's text, then its pair-less entries.
  """
  if mode not in MODES:
    raise ValueError(f"templatify mode {mode!r}: expected one of {MODES}")
  is_official = mode == "official"
  recovered = [[(index, recovery.recover(pair)) for index, pair in enumerate(entry.pairs)]
               for entry in entries]
  rng = random.Random(seed)
  if is_official:
    text = official_text_style(seed)
  else:
    option_counts = [len(item.options) for items in recovered for _, item in items
                     if item is not None and item.options is not None]
    text = draw_text_style(rng, max(option_counts, default=0))
  pairs = []  # per entry: its kept pairs and their fields
  for items in recovered:
    kept = []
    for index, item in items:
      if item is None:
        continue
      fields = _fields(item, text, seed * index if is_official else rng.getrandbits(64))
      if fields is not None:
        kept.append((item, fields))
    pairs.append(kept)
  groups: list[list[int]] = []
  for index, entry in enumerate(entries):
    if entry.linked and groups:
      groups[-1].append(index)
    else:
      groups.append([index])
  outputs: list[Output] = []
  patterns = text.patterns
  for group in reversed(groups):  # the release's order: the chain's last group first
    min_pairs = min(len(pairs[i]) for i in group)
    if is_official:
      style = official_group_style(seed, min_pairs, patterns)
      patterns = style.patterns
    else:
      style = _draw_group(min_pairs, max(len(pairs[i]) for i in group), text, rng)
    with_pairs = [i for i in group if pairs[i]]
    texts = [Output(entries[i].text, (i,)) for i in reversed(group) if not pairs[i]]
    if with_pairs:
      rendered = [render_entry(entries[i].text, pairs[i], style) for i in with_pairs]
      texts.insert(0, Output(text.entry_separator.join(rendered), tuple(with_pairs)))
    outputs = texts + outputs
  return outputs
