"""Our pools (the filtered mode of `templates`): pattern parts and layout strings.

Written for this project in the spirit of the official FLAN-style pools (docs/design.md s.2);
apart from the release's unanswerable-option strings (used in both modes), no string is copied
from the official code, whose pools the official mode draws from (`template_official`,
`template_official_patterns`). The official pools are lists of whole patterns (79 plain QA, 48
with options, 210 CoT, 240 options + CoT), some of them answer -> question. Ours are *parts*,
all question -> answer: a pattern of a pair kind is drawn part by part (a prefix pair, an input
phrasing, a target phrasing and the delimiter between them), so each kind has thousands of
distinct patterns; no target phrasing starts with a label of its own, so none is stacked on the
targets prefix ("A: Answer: x"; of the release's 577 pair patterns one does, options + CoT 37):

  plain           QA_PREFIXES 18 x QA_INPUTS 14 x QA_TARGETS 5 x DELIMITERS 3     = 3,780
  options         18 x OPTION_INPUTS 10 x OPTION_TARGETS 6 x 3                    = 3,240
  options hidden  the plain patterns, the options left out (as FLAN does)         = 3,780
  cot             18 x COT_INPUTS 12 x COT_TARGETS 12 x 3                         = 7,776
  options + cot   18 x OPTION_COT_INPUTS 8 x OPTION_COT_TARGETS 10 x 3            = 4,320

Why this many: a templatified text shares one pattern per kind across all its pairs (the
official sampling unit), so a 1B-token corpus (~1M texts of ~5 pairs) draws a pattern ~1M
times per kind. With a few dozen whole patterns each phrasing recurs tens of thousands of
times, enough for a model to learn the template itself as a pattern; with thousands of
combinations a given surface form recurs a few hundred times, and each part is still drawn
often enough to be learned as a variant of the same task format.

Placeholders are `str.format` fields: `{question}`, `{answer}`, `{options}` (the rendered option
block), `{option_answer}` (the gold option's label), `{cot}` (the rationale), `{context}`.
"""

# ---- Pair patterns (drawn once per kind of pair, per templatified text) ---------------------

# (inputs prefix, targets prefix) of a pair.
QA_PREFIXES = (
    ("Q: ", "A: "), ("Question: ", "Answer: "), ("", ""), ("Query: ", "Response: "),
    ("Input: ", "Output: "), ("Problem: ", "Solution: "), ("[Q]: ", "[A]: "),
    ("Q - ", "A - "), ("Quiz: ", "Key: "), ("Request: ", "Result: "), ("Ask: ", "Reply: "),
    ("Question - ", "Answer - "), ("QUESTION: ", "ANSWER: "), ("Prompt: ", "Completion: "),
    ("Task: ", "Solution: "), ("Instruction: ", "Response: "), ("", "Answer: "),
    ("Question:\n", "Answer:\n"),
)

# Delimiters between a pair's inputs and its targets.
DELIMITERS = ("\n", "\n\n", " ")

QA_INPUTS = (
    "{question}", "{question}\nAnswer the question using the text.",
    "Answer this question: {question}", "Please answer: {question}",
    "{question} Answer briefly.", "Based on the text, {question}",
    "Respond to the following question.\n{question}", "Here is a question: {question}",
    "Given the passage, answer: {question}", "Use what you just read.\n{question}",
    "{question}\nWhat is the answer?", "Try to answer this.\n{question}",
    "Read the question and reply. {question}", "Quick question: {question}",
)
QA_TARGETS = ("{answer}", "The answer is {answer}", "{answer}.", "{answer}, according to the text",
              "It is {answer}")

OPTION_INPUTS = (
    "{question}\n{options}", "{question} {options}", "{question}\n\n{options}",
    "Choose the best answer.\n{question}\n{options}", "Pick the correct option.\n{question}\n"
    "{options}", "{question}\nWhich of these is correct?\n{options}",
    "Multiple choice: {question}\n{options}", "Select one answer.\n{question}\n{options}",
    "Test question: {question}\n{options}", "Answer by picking an option. {question} {options}",
)
OPTION_TARGETS = ("{option_answer}", "The answer is {option_answer}", "{option_answer}.",
                  "The correct option is {option_answer}", "I choose {option_answer}",
                  "{option_answer} is correct")

COT_INPUTS = (
    "{question}\nLet's think step by step.", "{question}\nExplain your reasoning.",
    "{question} Think it through first.", "Solve this carefully: {question}",
    "{question}\nShow your work.", "Answer with a rationale. {question}",
    "{question}\nGive a step-by-step explanation.", "Let's work on this question: {question}",
    "{question}\nFirst think, then answer.", "Reason about it: {question}",
    "{question}\nJustify your answer.", "Think carefully. {question}",
)
COT_TARGETS = (
    "{cot}. So the answer is {answer}.", "{cot}. Therefore, the answer is {answer}.",
    "{cot}. The answer: {answer}.", "Let's think it through. {cot}. The answer is {answer}.",
    "{cot}.\nAnswer: {answer}", "{cot}. Thus, {answer}.",
    "{cot}. Hence the answer is {answer}.", "Step by step, {cot}. Final answer: {answer}",
    "{cot}.\nSo, {answer}.", "{cot}. Answer: {answer}", "{cot}. That gives {answer}.",
    "{cot}. In conclusion, {answer}.",
)

OPTION_COT_INPUTS = (
    "{question}\n{options}\nLet's think step by step.", "{question} {options}\nExplain, then "
    "choose.", "Choose the best answer and justify it.\n{question}\n{options}",
    "{question}\n{options}\nThink before answering.", "Multiple choice with explanation: "
    "{question}\n{options}", "Solve: {question}\n{options}", "{question}\n\n{options}\n\n"
    "Reason step by step.", "Pick one option after thinking it through.\n{question} {options}",
)
OPTION_COT_TARGETS = (
    "{cot}. So the answer is {option_answer}.", "{cot}. Therefore, the answer is "
    "{option_answer}.", "{cot}.\nCorrect option: {option_answer}",
    "{cot}. The right choice is {option_answer}.", "{cot}. Thus, {option_answer}.",
    "Let's think it through. {cot}. I choose {option_answer}.", "{cot}.\nAnswer: {option_answer}",
    "{cot}. Hence {option_answer}.", "{cot}.\nSelected option: {option_answer}",
    "Step by step, {cot}. Choice: {option_answer}",
)

# Separators between pairs, and between the entries of a text (drawn per text), with the
# shares of the official patterns' example separators (36 / 34 / 7 / 1 / 1 of the 79 QA ones).
SEPARATORS = ("\n\n\n", "\n\n", "\n", "\n------\n", "\n-----\n")
SEPARATOR_WEIGHTS = (36, 34, 7, 1, 1)

# ---- Options (drawn per text) --------------------------------------------------------------

# Start strings of an option block ("" writes the options right after the question).
OPTION_STARTS = (
    "Options:", "Choices:", "Choose from:", "Pick one:", "Possible answers:", "Candidates:",
    "Select from the following.", "Answer choices:", "Available options:", "", "Pick from:",
    "Options are:", "Which is it?", "Alternatives:", "Possible choices:", "Choose one:",
)
# Option label styles: (alphabet, format); "bullet" styles carry no ordinal label, so the
# answer is written as the option's text.
OPTION_LABEL_STYLES = (
    ("upper", "{}."), ("upper", "({})"), ("upper", "{})"), ("upper", "[{}]"),
    ("upper", "{}:"), ("upper", "{} -"), ("lower", "{}."), ("lower", "({})"),
    ("lower", "{})"), ("lower", "[{}]"), ("digit", "{}."), ("digit", "{})"),
    ("digit", "({})"), ("digit", "[{}]"), ("bullet", "-"), ("bullet", "*"), ("bullet", "+"),
)
# What comes before each option's label: a new line, or a space (options on one line).
OPTION_LEADS = ("\n", " ")
# What ends each option, and how often (the official 2 to 1).
OPTION_ENDS = ("", ";")
OPTION_END_WEIGHTS = (2, 1)

# The official release's strings standing for a gold answer that is none of the options:
# an answer equal to one of them, and not itself an option, is written as one string drawn
# from them per text (the options are left as they are); any other answer that matches no
# option drops the pair. The release's list, as it is: 41 strings, then each lowercased (82
# in all, the draw made over all 82). Its 23rd entry is two strings run together (a missing
# comma in the release), so "None of the options fit" alone is not on it; nor is "None of
# the above", while "None" is.
_UNANSWERABLE_CASED = (
    "None of the above choices", "None", "None of the provided choices meet the criteria",
    "No option among those listed fulfills the requirements",
    "There is no suitable choice among the options presented",
    "Not one of the options provided can adequately respond",
    "None of the selections offered provide a valid solution",
    "No option listed is sufficient to answer the question",
    "None of the given alternatives satisfy the conditions",
    "There are no appropriate choices among the options given",
    "Not a single option among those provided offers a valid response",
    "None of the choices given align with the requirements",
    "No option provided adequately addresses the question at hand",
    "None of the options presented offer a viable solution",
    "Not one of the provided options is applicable to the question",
    "None of the choices listed can sufficiently address the question",
    "There is no option provided that meets the necessary criteria",
    "None of the options available are suitable for the question posed",
    "Not a single choice among those offered meets the specified criteria",
    "None of the alternatives provided adequately fulfill the requirements",
    "No option among those presented adequately resolves the question",
    "None of the available choices adequately meet the specified conditions"
    "None of the options fit",
    "No option works", "Nothing fits", "No suitable choice", "No viable option",
    "No answer among these", "None are right", "Nothing applies", "No match", "No valid choice",
    "None of the options meet the criteria", "No option satisfies the conditions",
    "Nothing matches the requirements", "No suitable answer", "No appropriate choice",
    "No correct option", "None of these options fit", "No answer provided", "No valid response",
    "No matching selection",
)
UNANSWERABLE_OPTIONS = _UNANSWERABLE_CASED + tuple(option.lower()
                                                   for option in _UNANSWERABLE_CASED)
UNANSWERABLE_OPTION_SET = frozenset(UNANSWERABLE_OPTIONS)

# ---- Layout strings (drawn per group of linked entries) ------------------------------------

# Wrappers of the raw text in the Classic layout; the text is bare in BARE_READ_RATE of the
# draws (half, as in the official pool).
BARE_READ_RATE = 0.5
READ_STARTS = (
    "Read the following article.\n\n{context}", "Article:\n{context}", "Passage:\n{context}",
    "Text:\n{context}", "Here is a document.\n\n{context}", "{context}\n\nEnd of text.",
    "Consider the passage below.\n{context}", "Read this and answer the questions.\n{context}",
    "Context: {context}", "Document:\n{context}", "Below is a text.\n\n{context}",
    "Given the following text:\n{context}", "Source text:\n{context}", "Excerpt:\n{context}",
    "Please read.\n\n{context}", "The text reads:\n{context}",
    "Take a look at this passage.\n{context}", "Background:\n{context}",
    "Reading material:\n{context}", "Story:\n{context}",
)
# Between the text and the comprehension start (none when the comprehension start is empty).
READ_ENDS = (" ", "\n", "\n\n")
# Strings between the text and its pairs; none in NO_COMPREHENSION_RATE of the draws (half,
# as in the official pool).
NO_COMPREHENSION_RATE = 0.5
COMPREHENSION_STARTS = (
    "Answer questions about the text above.", "Now answer the following.",
    "Questions about the passage:", "Use the text to answer these questions.",
    "Based on the article, respond below.", "Test your understanding.",
    "Here are questions on the reading.", "Reading comprehension:",
    "Answer according to the passage.", "What did you learn from the text?",
    "Some questions on the document above:", "Check your comprehension.",
)

# Inverted entries (pairs before the text): `{pairs}` and `{context}` templates, and what
# joins them.
INVERTED_QA_STARTS = (
    "{pairs}", "Answer these questions after reading the text below.\n{pairs}",
    "Questions first:\n{pairs}", "Keep these questions in mind while reading.\n{pairs}",
    "Here are some questions.\n{pairs}", "The text that follows answers these:\n{pairs}",
    "Questions and answers about the text below:\n{pairs}", "Preview questions: {pairs}",
    "Before reading, look at these questions.\n{pairs}", "Q&A: {pairs}",
)
INVERTED_QA_ENDS = ("\n\n", "\n", "\n\n\n", " ")
INVERTED_TEXT_STARTS = (
    "{context}", "The questions above are about this text: {context}",
    "Here is the passage.\n{context}", "Now the text:\n{context}", "Source: {context}",
    "Text for the questions above:\n{context}", "Read the passage:\n{context}",
    "Article: {context}", "The answers come from this document:\n{context}",
    "Context: {context}",
)

# Dialog layouts: what joins the text and the conversation, how it is introduced, and the
# speakers (asker, answerer).
DIALOG_JOINS = ("\n\n", "\n", " ", " | ")
DIALOG_STARTS = (
    "Here is a conversation about the text.", "A discussion of the passage follows.",
    "Conversation:", "Dialogue:", "Two people talk about what they read.",
    "Chat about the text:", "The following exchange is about the article.",
    "Read the dialogue below.", "", "Q&A session:",
)
DIALOG_SPEAKERS = (
    ("User", "Assistant"), ("Student", "Teacher"), ("Human", "AI"), ("Reader", "Expert"),
    ("Customer", "Agent"), ("Learner", "Tutor"), ("Person A", "Person B"),
    ("Interviewer", "Interviewee"), ("Child", "Parent"), ("Client", "Consultant"),
    ("Questioner", "Answerer"), ("Visitor", "Guide"), ("Patient", "Doctor"), ("Q", "A"),
    ("Me", "You"), ("Trainee", "Mentor"),
)
# Between a turn's question and answer (each speaker starts a new line anyway), and turns.
DIALOG_SEPARATORS = ("", "\n")

# Next-turn dialog: `{context}`, the earlier turns `{history}` and the last turn `{next_turn}`.
NEXT_TURN_DIALOG = (
    "{context}\n\nContinue the conversation.{history}{next_turn}",
    "{context}\n\nHere is a conversation about the text.{history}\nWhat comes next?{next_turn}",
    "{context}{history}\n\nWrite the next turn.{next_turn}",
    "{context}\n\nDialogue so far:{history}\n\nNext turn:{next_turn}",
    "{context}\nRead the chat and give the reply.{history}{next_turn}",
    "{context}\n\nConversation:{history}\nHow does it continue?{next_turn}",
    "{context}{history}{next_turn}",
    "{context}\n\nPredict the next response in this exchange.{history}{next_turn}",
    "{context}\n\nA conversation is under way.{history}\nThe reply:{next_turn}",
    "{context}\nComplete the dialog with the next line.{history}{next_turn}",
)

# Numbered questions: `{context}`, then numbered `{questions}` and `{answers}`.
NUMBERED_QUESTIONS = (
    "{context}\n\nAnswer the following questions:{questions}\n\nAnswers:{answers}",
    "{context}\n\nQuestions:{questions}\n\nAnswers:{answers}",
    "{context}\n\nHere are some questions about the text.{questions}\n\nResponses:{answers}",
    "Read the text and answer these.\n{context}{questions}\n\nAnswer key:{answers}",
    "{context}{questions}\n\nAnswer each question in order.{answers}",
    "{context}\n\nQuiz on the passage:{questions}\n\nSolutions:{answers}",
    "{context}\nRespond to the numbered questions below.{questions}\n{answers}",
    "{context}\n\nSeveral questions follow.{questions}\nTheir answers:{answers}",
    "{context}\n\nTry these questions:{questions}\n\nCheck your answers:{answers}",
    "{context}\n\nComprehension check.{questions}\n\nExpected answers:{answers}",
)
# Number formats of the items (each starts a new line).
NUMBER_FORMATS = ("\n{}. ", "\n{}) ", "\n({}) ", "\nQ{}: ", "\n#{} ", "\n{} - ")

# Inline few-shot: `{context}`, the solved `{examples}` and the last pair as `{test}`; each
# solved example is written with `EXAMPLE` templates (the rationale shown in the explaining
# ones, used when every pair has one).
INLINE_FEW_SHOT = (
    "{context}\n\nHere are a few questions answered from the text:{examples}\n\nNow answer "
    "this one.{test}",
    "{context}\n\nExamples:{examples}\n\nFollowing the examples, answer:{test}",
    "{context}\n\nStudy these solved questions.{examples}\n\nYour turn:{test}",
    "{context}{examples}\n\nAnswer the next question the same way.{test}",
    "{context}\n\nSome answered questions:{examples}\nOne more:{test}",
    "{context}\n\nLook at how these are answered.{examples}\n\nThen:{test}",
    "{context}\n\nSolved examples:{examples}\n\nNow solve:{test}",
    "{context}\n\nUse the examples as a guide.{examples}\n\nQuestion to answer:{test}",
    "{context}\n\nPreviously answered:{examples}\n\nNew question:{test}",
    "{context}\n\nDemonstrations:{examples}\n\nTest:{test}",
)
INLINE_EXAMPLES = (
    "\n\nInput: {input}\nOutput: {output}", "\n\nQ: {input}\nA: {output}",
    "\n\n{input}\nAnswer: {output}", "\n\nQuestion: {input}\nAnswer: {output}",
    "\n\nExample: {input}\nSolution: {output}", "\n\n{input}\n{output}",
    "\n\nProblem: {input}\nSolution: {output}", "\n\n[Q] {input}\n[A] {output}",
    "\n\nAsk: {input}\nReply: {output}", "\n\nQuery: {input}\nResponse: {output}",
)
INLINE_EXPLAINED_EXAMPLES = (
    "\n\nInput: {input}\nOutput: {output}\nWhy? {explanation}",
    "\n\nQ: {input}\nA: {output}\nExplanation: {explanation}",
    "\n\n{input}\nAnswer: {output}\nBecause: {explanation}",
    "\n\nQuestion: {input}\nAnswer: {output}\nReasoning: {explanation}",
    "\n\nExample: {input}\nSolution: {output}\nWhy: {explanation}",
    "\n\n{input}\n{output}\n({explanation})",
    "\n\nProblem: {input}\nSolution: {output}\nRationale: {explanation}",
    "\n\n[Q] {input}\n[A] {output}\n[Why] {explanation}",
    "\n\nAsk: {input}\nReply: {output}\nThe reason: {explanation}",
    "\n\nQuery: {input}\nResponse: {output}\nJustification: {explanation}",
)
# The test example of an inline few-shot text (answered, as everything in pre-training).
INLINE_TESTS = ("\n{input}\n{output}", " {input}\nAnswer: {output}", "\nQ: {input}\nA: {output}",
                "\nInput: {input}\nOutput: {output}", "\n{input}\nSolution: {output}")
