"""Task categories: one of `CATEGORIES` per synthesized pair, by ordered rules.

The paper reports 49-51 task categories over 9 scenarios (docs/design.md s.3); ours are the
50 of `CATEGORIES`, each decided by the cue tables below. Grounding (whether an answer is copied from the
text) is decided here too, since extractive categories depend on it and the quality filters
check it.
"""

from __future__ import annotations

import re
from typing import Optional, Sequence

from instruct_pt.data.formats import QAPair
from instruct_pt.synthesis.recovery import (COT_QUESTION_MARKER, is_cot_question, normalize,
                                            split_options)

# Answers (normalised) that mean "no option applies".
UNANSWERABLE_ANSWERS = (
    "none of the above", "none of the above choices", "none of these", "not enough information",
    "cannot be determined", "can't be determined", "unanswerable", "not mentioned",
    "it is not mentioned", "not enough info", "none", "no answer", "unknown",
    "it is not possible to tell", "there is not enough information", "not given",
)

# Task categories: name -> description.
CATEGORIES = {
    "code": "Write, read or explain program code or queries.",
    "translation": "Translate text between languages.",
    "summarization": "Summarise a text or a part of it.",
    "title_generation": "Propose a title or headline.",
    "question_generation": "Write a question about the text.",
    "creative_writing": "Compose a story, poem, letter, essay or similar text.",
    "fill_in_the_blank": "Fill a gap marked in a sentence.",
    "grammar_correction": "Correct grammar, spelling or wording errors.",
    "paraphrase": "Restate a sentence with the same meaning, or judge whether two do.",
    "style_transfer": "Rewrite a text in another style, register or reading level.",
    "nli": "Decide entailment, contradiction or neutrality between a premise and a hypothesis.",
    "fact_verification": "Judge whether a claim or statement is true.",
    "sentiment": "Classify the sentiment or polarity of a text.",
    "keyword_extraction": "List the key words or terms of a text.",
    "topic_classification": "Assign a topic, genre or category to a text.",
    "main_idea": "State the main idea, point or purpose of a passage.",
    "author_attitude": "Identify the author's attitude, tone or view.",
    "coreference": "Resolve what a pronoun or expression refers to.",
    "definition": "Define a term or explain what an expression means.",
    "analogy": "Complete or explain an analogy or metaphor.",
    "text_completion": "Continue a text or predict what comes next.",
    "dialogue_response": "Produce or choose the next utterance of a conversation.",
    "list_extraction": "List several items mentioned in the text.",
    "extractive_qa": "Answer with a span copied from the text.",
    "multiple_choice": "Choose the correct option among given options.",
    "multiple_choice_cot": "Choose among options after a chain of thought.",
    "arithmetic": "Evaluate an explicit arithmetic expression.",
    "math_word_problem": "Solve a word problem that involves several quantities.",
    "counting": "Count how many things of a kind there are.",
    "cot_reasoning": "Free-form question answered with a chain of thought.",
    "yes_no": "Answer a question with yes or no.",
    "unanswerable": "Recognise that the text does not contain the answer.",
    "hypothetical": "Reason about a counterfactual or hypothetical situation.",
    "cause_effect": "Explain why something happened or what it led to.",
    "comparison": "Compare two or more things.",
    "temporal_reasoning": "Reason about order, duration or timing of events.",
    "inference": "Draw a conclusion implied but not stated by the text.",
    "commonsense_reasoning": "Use everyday knowledge to judge what is likely.",
    "opinion": "Give or judge a personal opinion or recommendation.",
    "explanation": "Give an open-ended explanation of how something works or is.",
    "procedure": "Describe the steps or way to do something.",
    "purpose": "State the goal or purpose of an action or thing.",
    "emotion": "Identify how someone feels.",
    "relation_extraction": "Describe the relationship between two entities.",
    "description": "Describe the features or characteristics of something.",
    "date_time": "Answer when something happened (a date, year or time).",
    "location": "Answer where something is or happened.",
    "entity_recognition": "Name the person, organisation or entity asked about.",
    "quantity": "Give an amount, size, age, distance or other quantity.",
    "abstractive_qa": "Answer a question in free form (fallback).",
}

# Question cue rules, tried in order: (category, regular expression over the lowercased question).
TASK_CUES = (
    ("code", r"```|\bdef \w+\(|\bprint\(|\breturn\b|\bselect\b.+\bfrom\b|\bcode\b|\bpython\b"
             r"|\bjavascript\b|\bsql\b|\bfunction\b.*\(|\bprogram\b|\bsnippet\b"),
    ("translation", r"\btranslat|\bin (french|spanish|german|chinese|japanese|italian|russian"
                    r"|english|portuguese|arabic|korean)\b"),
    ("summarization", r"\bsummar|\btl;?dr\b|\bin a nutshell\b|\bbrief overview\b"),
    ("title_generation", r"\btitle\b|\bheadline\b"),
    ("question_generation", r"\b(write|generate|ask|create|pose|formulate) (a|an|one|some)?"
                            r" ?questions?\b"),
    ("creative_writing", r"\b(write|compose|draft|create) (a|an|some)\b.*\b(story|poem|essay"
                         r"|letter|email|e-mail|song|tweet|paragraph|dialogue|review|speech)\b"),
    ("fill_in_the_blank", r"_{2,}|\[blank\]|\bfill in\b|\bblank\b"),
    ("grammar_correction", r"\bgrammar|\bgrammatical|\bcorrect (the|this) (sentence|text)\b"
                           r"|\bspelling\b|\bfix the errors?\b"),
    ("paraphrase", r"\bparaphras|\brephrase|\bsame meaning\b|\brestate\b|\bin other words\b"),
    ("style_transfer", r"\brewrite\b|\bsimplify\b|\bmore formal\b|\bless formal\b|\binformal\b"
                       r"|\bfor a child\b"),
    ("nli", r"\bentail|\bcontradict|\bhypothesis\b|\bpremise\b|\bdoes it follow\b"
            r"|\bfollow from\b"),
    ("fact_verification", r"\btrue or false\b|\bis it true\b|\bis the (claim|statement)\b"
                          r"|\bverify\b|\bfact[- ]check|\bcorrect or incorrect\b"),
    ("sentiment", r"\bsentiment\b|\bpositive or negative\b|\bnegative or positive\b"
                  r"|\bpolarity\b"),
    ("keyword_extraction", r"\bkey ?words?\b|\bkey terms?\b|\bkey phrases?\b|\btags\b"),
    ("topic_classification", r"\btopic\b|\bcategor|\bgenre\b|\bclassify\b|\bwhich section\b"),
    ("main_idea", r"\bmain (idea|point|theme)\b|\bmainly about\b|\bprimary purpose\b"
                  r"|\bcentral idea\b|\bbest describes the (passage|text|article)\b"),
    ("author_attitude", r"\bauthor'?s? (attitude|tone|view|opinion|stance)\b|\battitude of the"
                        r" author\b|\bauthor (feel|think|believe)s?\b"),
    ("coreference", r"\brefers? to\b|\breferring to\b|\bpronoun\b|\bantecedent\b"
                    r"|\bwho is \"?(he|she|they|it)\"?\b"),
    ("definition", r"\bdefin|\bwhat does [\"'\w -]+ mean\b|\bmeaning of\b|\bwhat is meant by\b"
                   r"|\bstand for\b|\bstands for\b"),
    ("analogy", r"\bis to\b.*\bas\b|\banalog|\bmetaphor\b"),
    ("text_completion", r"\bcomplete the (sentence|text|paragraph|story)\b|\bcontinue\b"
                        r"|\bwhat happens next\b|\bnext sentence\b|\bfinish the\b"),
    ("dialogue_response", r"\brespond\b|\breply\b|\bwhat would \w+ say\b|\bnext (utterance"
                          r"|turn|line)\b"),
    ("list_extraction", r"^list\b|\blist (all|the|every)\b|\bname (all|three|two|four|five"
                        r"|some|the)\b|\benumerate\b|\bwhat are (all|some of) the\b"),
    ("extractive_qa", r"\bextract\b|\bquote\b|\bwhich (word|phrase|sentence)\b|\bcopy\b"
                      r"|\bexact (words|phrase)\b|\bfind the (span|sentence|phrase)\b"),
)

# Reasoning cue rules, tried (in order) after the format and arithmetic rules.
REASONING_CUES = (
    ("hypothetical", r"\bwhat (would|might) happen if\b|\bwhat if\b|\bsuppose\b|\bimagine\b"
                     r"|\bhad\b.*\bwould\b|\bwould\b.*\bif\b"),
    ("cause_effect", r"^why\b|\bwhy\b|\bcause|\bbecause\b|\bresult(ed)? (of|in)\b|\beffect\b"
                     r"|\blead to\b|\bled to\b|\bdue to\b|\bconsequence"),
    ("comparison", r"\bcompar|\bdifference between\b|\b(more|less|fewer) than\b|\bsimilar"
                   r"|\bin common\b|\bversus\b|\bvs\.?\b|\bwhich is (bigger|larger|smaller"
                   r"|older|newer|better|worse|faster|slower|taller|longer|shorter)\b"),
    ("temporal_reasoning", r"\bbefore\b|\bafter\b|\bearlier\b|\blater\b|\bhow long\b"
                           r"|\bin what order\b|\bsequence\b|\bfirst\b|\blast\b|\bduring\b"),
    ("inference", r"\binfer|\bimpl(y|ied|ies)\b|\bsuggests?\b|\bconclude|\bconclusion\b"),
    ("commonsense_reasoning", r"\bmost likely\b|\bprobably\b|\blikely\b|\bcommon sense\b"
                              r"|\bwhat might\b|\bwhat will\b"),
    ("opinion", r"\bdo you think\b|\byour opinion\b|\bin your view\b|\bshould\b|\bagree\b"
                r"|\bwhat do you\b|\bwould you\b|\brecommend"),
    ("explanation", r"\bexplain\b|\bhow does\b|\bhow do\b|\bhow did\b|\belaborate\b"
                    r"|\bhow is it that\b"),
    ("procedure", r"\bhow to\b|\bhow can\b|\bsteps?\b|\bprocess\b|\bprocedure\b"),
    ("purpose", r"\bpurpose\b|\bin order to\b|\bwhat for\b|\bgoal\b|\baim\b|\bintended\b"),
    ("emotion", r"\bfeel|\bemotion|\bmood\b|\bhappy\b|\bsad\b|\bangry\b"),
    ("relation_extraction", r"\brelationship\b|\brelated to\b|\brelation\b|\bconnection between\b"),
    ("description", r"\bdescribe\b|\bwhat (is|are|was|were) \w+( \w+)? like\b"
                    r"|\bcharacteristics?\b|\bfeatures?\b"),
)

# Wh-question cue rules, tried after the answer-shape rules.
WH_CUES = (
    ("date_time", r"^when\b|\bwhen (did|was|were|is|does|do|will)\b|\bwhat (year|date|day|time"
                  r"|month|century)\b|\bwhich (year|date|day|month|century)\b"),
    ("location", r"^where\b|\bwhere (did|was|were|is|are|does|do)\b|\bwhat (city|country|place"
                 r"|location|town|state|region)\b|\bwhich (city|country|place|town|state)\b"),
    ("entity_recognition", r"^who\b|\bwho (is|was|were|are|did|does|wrote|founded|made)\b"
                           r"|\bwhose\b|\bwhat is the name\b|\bwhich (person|company"
                           r"|organi[sz]ation|team|group)\b"),
    ("quantity", r"\bhow (much|far|old|big|large|tall|heavy|often)\b|\bwhat (percentage|number"
                 r"|amount|size)\b"),
)

# Categories whose answers must be copied from the text (checked by `QualityFilter`).
EXTRACTIVE_CATEGORIES = ("extractive_qa", "list_extraction", "keyword_extraction")
EXTRACTIVE_SPAN_MAX_WORDS = 10  # longest span answer `categorize` tags as extractive
YES_NO_ANSWERS = frozenset({"yes", "no", "yes it is", "no it is not", "yes it does",
                            "no it does not", "true", "false"})

_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_ARITHMETIC = re.compile(r"\d\s*[+*/×÷^=]\s*\d|\d\s+-\s+\d|\b(plus|minus|times|divided by"
                         r"|multiplied by)\s+\d")
_MATH_WORDS = re.compile(r"\bhow (many|much)\b|\bcalculate\b|\bcompute\b|\btotal\b|\baverage\b"
                         r"|\bpercent|\bratio\b|\bsolve\b|\bequation\b|\bcost\b|\bprice\b"
                         r"|\bwhat is\b|\bfind\b")
_COUNTING = re.compile(r"\bhow many\b")


def _compile(rules: Sequence[tuple[str, str]]) -> tuple[tuple[str, re.Pattern], ...]:
  return tuple((name, re.compile(pattern)) for name, pattern in rules)


_TASK_CUES = _compile(TASK_CUES)
_REASONING_CUES = _compile(REASONING_CUES)
_WH_CUES = _compile(WH_CUES)


def categorize(pair: QAPair, context: str) -> str:
  """Tags a pair with exactly one of `CATEGORIES`, by the first rule that matches.

  Order: explicit task cues in the question stem (`template_pools.TASK_CUES`: code,
  translation, summarisation, ...); options present (multiple choice, with or without CoT);
  arithmetic expressions, word problems (>= 2 numbers and a math cue) and counting
  ("how many"); a CoT marker; yes/no and unanswerable answers; reasoning cues
  (`REASONING_CUES`); wh-cues (`WH_CUES`); a short answer that is a span of the context
  (extractive); else `abstractive_qa`.

  Args:
    pair: the pair as the synthesizer wrote it.
    context: the raw text the pair was made from.
  """
  is_cot = is_cot_question(pair.question)
  stem = pair.question.strip()
  if is_cot:
    stem = stem[:-len(COT_QUESTION_MARKER.strip())]
  stem, options = split_options(stem.strip())
  stem = stem.lower()
  rule = (_first_match(_TASK_CUES, stem)
          or (options and ("multiple_choice_cot" if is_cot else "multiple_choice"))
          or _numeric_category(stem)
          or (is_cot and "cot_reasoning")
          or _answer_shape_category(pair.answer)
          or _first_match(_REASONING_CUES, stem)
          or _first_match(_WH_CUES, stem))
  if rule:
    return rule
  short = len(pair.answer.split()) <= EXTRACTIVE_SPAN_MAX_WORDS
  return "extractive_qa" if short and grounded(pair.answer, context) else "abstractive_qa"


def _first_match(rules: Sequence[tuple[str, re.Pattern]], text: str) -> Optional[str]:
  return next((name for name, pattern in rules if pattern.search(text)), None)


def _numeric_category(stem: str) -> Optional[str]:
  if _ARITHMETIC.search(stem):
    return "arithmetic"
  if len(_NUMBER.findall(stem)) >= 2 and _MATH_WORDS.search(stem):
    return "math_word_problem"
  return "counting" if _COUNTING.search(stem) else None


def _answer_shape_category(answer: str) -> Optional[str]:
  key = normalize(answer)
  if key in YES_NO_ANSWERS:
    return "yes_no"
  return "unanswerable" if key in _UNANSWERABLE_KEYS else None



_UNANSWERABLE_KEYS = frozenset(normalize(text) for text in UNANSWERABLE_ANSWERS)


def grounded(answer: str, context: str) -> bool:
  """Whether the normalised answer occurs in the normalised context on word boundaries."""
  key = normalize(answer)
  return bool(key) and f" {key} " in f" {normalize(context)} "
