"""Data tables for `templates`: template pools, option styles, speakers and task categories.

Written for this project in the spirit of the official FLAN-style pools (PAPER.md section 2);
no string is copied from the official code. Placeholders are `str.format` fields:

* `{question}` the question stem, `{options}` the rendered option block (its start string and
  labelled options), `{answer}` the answer (for option items: the gold option with its label),
  `{cot}` the rationale of a chain-of-thought pair, `{context}` a raw text.
* `{q_label}` / `{a_label}` a question-label pair from `QUESTION_LABELS`.
* Layout pools use `{questions}` / `{answers}` (numbered), `{examples}` (inline few-shot) and
  `{history}` / `{user}` / `{assistant}` (next-turn dialog).
"""

# Plain question-answer patterns (Classic layout).
QA = (
    "Q: {question}\nA: {answer}",
    "Question: {question}\nAnswer: {answer}",
    "{question}\n{answer}",
    "{question}\nAnswer: {answer}",
    "{q_label} {question}\n{a_label} {answer}",
    "{q_label} {question}\n{a_label} {answer}",
    "Answer the question below.\n{question}\n{answer}",
    "Please answer this: {question}\n{answer}",
    "{question}\nResponse: {answer}",
    "Here is a question: {question}\nThe answer: {answer}",
    "Based on the text, {question}\n{answer}",
    "Respond to the following question.\n{question}\nResponse: {answer}",
    "Given the passage, answer: {question}\n{answer}",
    "{question} Answer briefly.\n{answer}",
    "Question about the text: {question}\nReply: {answer}",
    "Input: {question}\nOutput: {answer}",
    "Try to answer this question.\nQ: {question}\nA: {answer}",
    "Use the text to answer.\n{question}\nAnswer: {answer}",
    "{question}\nWhat is the answer?\n{answer}",
    "Query: {question}\nResult: {answer}",
    "Read the question and reply.\n{question}\n{answer}",
    "The question is: {question}\nThe answer is: {answer}",
    "Answer using what you just read.\n{q_label} {question}\n{a_label} {answer}",
    "Quick question: {question}\n{answer}",
)

# Patterns for a question with options.
QA_OPTIONS = (
    "{question}\n{options}\nAnswer: {answer}",
    "Q: {question}\n{options}\nA: {answer}",
    "Question: {question}\n{options}\nAnswer: {answer}",
    "{question}\n{options}\n{answer}",
    "Choose the best answer.\n{question}\n{options}\n{answer}",
    "{q_label} {question}\n{options}\n{a_label} {answer}",
    "Pick the correct option.\n{question}\n{options}\nCorrect option: {answer}",
    "{question}\n\n{options}\n\nThe right choice is {answer}",
    "Select one answer to the question below.\n{question}\n{options}\nSelected: {answer}",
    "Multiple choice: {question}\n{options}\nAnswer: {answer}",
    "{question}\nWhich of these is correct?\n{options}\n{answer}",
    "Based on the text, {question}\n{options}\nResponse: {answer}",
    "Answer the question by picking an option.\n{question}\n{options}\n{answer}",
    "Test question: {question}\n{options}\nKey: {answer}",
)

# Option-free copies: the question is asked without its options (as FLAN does).
QA_OPTIONS_HIDDEN = (
    "{question}\n{answer}",
    "Q: {question}\nA: {answer}",
    "Answer without looking at options: {question}\n{answer}",
    "Question: {question}\nAnswer: {answer}",
    "{q_label} {question}\n{a_label} {answer}",
)

# Patterns for a chain-of-thought pair.
QA_COT = (
    "{question}\nLet's think step by step.\n{cot}\nTherefore, the answer is {answer}",
    "Q: {question}\nA: Let's reason it out. {cot}\nSo the answer is {answer}",
    "Question: {question}\nThink it through first.\n{cot}\nFinal answer: {answer}",
    "{question}\nExplain your reasoning, then answer.\n{cot}\nAnswer: {answer}",
    "{q_label} {question}\n{a_label} {cot}\nThus, {answer}",
    "Solve this carefully: {question}\nReasoning: {cot}\nAnswer: {answer}",
    "{question}\nGive a step-by-step explanation.\n{cot}\nIn conclusion, the answer is {answer}",
    "Consider the question: {question}\nStep by step: {cot}\nHence the answer: {answer}",
    "{question}\nShow your work.\n{cot}\nResult: {answer}",
    "Answer with a rationale. {question}\nRationale: {cot}\nAnswer: {answer}",
    "Let's work on this question: {question}\n{cot}\nThe answer is therefore {answer}",
    "{question}\nFirst think, then answer.\nThinking: {cot}\nAnswer: {answer}",
    "Here is a question that needs reasoning. {question}\n{cot}\nSo, {answer}",
)

# Patterns for a question with options and a chain of thought.
QA_OPTIONS_COT = (
    "{question}\n{options}\nLet's think step by step.\n{cot}\nTherefore, the answer is {answer}",
    "Q: {question}\n{options}\nA: Let's reason it out. {cot}\nSo the answer is {answer}",
    "Question: {question}\n{options}\nExplain, then choose.\n{cot}\nChoice: {answer}",
    "{q_label} {question}\n{options}\n{a_label} {cot}\nThus, {answer}",
    "Choose the best answer and justify it.\n{question}\n{options}\n{cot}\nAnswer: {answer}",
    "{question}\n{options}\nReasoning: {cot}\nCorrect option: {answer}",
    "Pick one option after thinking it through.\n{question}\n{options}\n{cot}\nPick: {answer}",
    "{question}\n\n{options}\n\nStep by step: {cot}\nHence the answer is {answer}",
    "Multiple choice with explanation: {question}\n{options}\nWhy: {cot}\nAnswer: {answer}",
    "Solve: {question}\n{options}\nWork: {cot}\nSelected option: {answer}",
    "{question}\n{options}\nThink before answering. {cot}\nSo the right choice is {answer}",
)

# Cue and conclusion phrases of CoT pairs in the non-classic layouts.
COT_CUES = (
    "Let's think step by step.", "Think it through step by step.", "Explain your reasoning.",
    "Reason about it before answering.", "Show your reasoning.", "Walk through the logic.",
    "Justify your answer.", "Work it out step by step.", "Give a rationale first.",
    "Think carefully.",
)
COT_FINALS = (
    "Therefore, the answer is {answer}", "So the answer is {answer}", "Final answer: {answer}",
    "Thus, {answer}", "Hence the answer: {answer}", "The answer is therefore {answer}",
    "In conclusion: {answer}", "That gives {answer}", "Answer: {answer}", "So, {answer}",
)

# Start strings of an option block ("" writes the options right after the question).
OPTION_STARTS = (
    "Options:", "Choices:", "Choose from:", "Pick one:", "Possible answers:", "Candidates:",
    "Select from the following.", "Answer choices:", "Available options:", "", "Pick from:",
    "Options are:", "Which is it?", "Alternatives:", "Possible choices:", "Choose one:",
)

# Option label styles: (alphabet, format); "bullet" styles carry no ordinal label.
OPTION_LABEL_STYLES = (
    ("upper", "{}."), ("upper", "({})"), ("upper", "{})"), ("upper", "[{}]"),
    ("upper", "{}:"), ("upper", "{} -"), ("lower", "{}."), ("lower", "({})"),
    ("lower", "{})"), ("lower", "[{}]"), ("digit", "{}."), ("digit", "{})"),
    ("digit", "({})"), ("digit", "[{}]"), ("bullet", "-"), ("bullet", "*"), ("bullet", "+"),
)

# Delimiters between labelled options (bullet styles always use a newline).
OPTION_DELIMITERS = ("\n", "\n", " ", "  ", "; ", " | ")

# Strings replacing a "None of the above"-style gold option and its answer.
UNANSWERABLE_OPTIONS = (
    "None of the above", "None of the above choices", "None of these", "Not enough information",
    "The text does not say", "Cannot be determined", "Unanswerable", "It is not mentioned",
    "There is no way to tell", "The passage gives no answer", "No answer is given",
    "Insufficient information", "None of the options", "Unknown from the text",
    "The answer is not in the passage", "Impossible to know", "None of the listed answers",
    "Not stated", "No correct option above", "The article does not specify",
)

# Answers (normalised) that mean "no option applies".
UNANSWERABLE_ANSWERS = (
    "none of the above", "none of the above choices", "none of these", "not enough information",
    "cannot be determined", "can't be determined", "unanswerable", "not mentioned",
    "it is not mentioned", "not enough info", "none", "no answer", "unknown",
    "it is not possible to tell", "there is not enough information", "not given",
)

# Question/answer label pairs.
QUESTION_LABELS = (
    ("Q:", "A:"), ("Question:", "Answer:"), ("Query:", "Response:"), ("Input:", "Output:"),
    ("Problem:", "Solution:"), ("Prompt:", "Reply:"), ("Ask:", "Answer:"),
    ("Question -", "Answer -"), ("[Q]", "[A]"), ("Q -", "A -"), ("Quiz:", "Key:"),
    ("Request:", "Result:"), ("Instruction:", "Output:"), ("Task:", "Solution:"),
)

# Dialog speaker pairs (asker, answerer).
DIALOG_SPEAKERS = (
    ("User", "Assistant"), ("Student", "Teacher"), ("Human", "AI"), ("Reader", "Expert"),
    ("Customer", "Agent"), ("Learner", "Tutor"), ("Person A", "Person B"),
    ("Interviewer", "Interviewee"), ("Child", "Parent"), ("Client", "Consultant"),
    ("Questioner", "Answerer"), ("Visitor", "Guide"), ("Patient", "Doctor"), ("Q", "A"),
    ("Me", "You"), ("Trainee", "Mentor"),
)

# Numbered-questions layouts: `{questions}` and `{answers}` are numbered lists.
NUMBERED_QUESTIONS = (
    "Answer the following questions:\n{questions}\n\nAnswers:\n{answers}",
    "Questions:\n{questions}\n\nAnswers:\n{answers}",
    "Here are some questions about the text.\n{questions}\n\nResponses:\n{answers}",
    "Read the text and answer these.\n{questions}\n\nAnswer key:\n{answers}",
    "{questions}\n\nAnswer each question in order.\n{answers}",
    "Quiz on the passage:\n{questions}\n\nSolutions:\n{answers}",
    "Respond to the numbered questions below.\n{questions}\n\n{answers}",
    "Several questions follow.\n{questions}\nTheir answers:\n{answers}",
    "Try these questions:\n{questions}\n\nCheck your answers:\n{answers}",
    "Comprehension check.\n{questions}\n\nExpected answers:\n{answers}",
)
NUMBER_FORMATS = ("{}.", "{})", "({})", "Q{}:", "#{}", "{} -")

# Inline few-shot layouts: solved `{examples}` come first, then the last question.
INLINE_FEW_SHOT = (
    "Here are a few questions answered from the text:\n{examples}\n\nNow answer this one.\n"
    "{question}\n{answer}",
    "Examples:\n{examples}\n\nFollowing the examples, answer: {question}\n{answer}",
    "Study these solved questions.\n{examples}\n\nYour turn: {question}\n{answer}",
    "{examples}\n\nAnswer the next question the same way.\n{question}\n{answer}",
    "Some answered questions:\n{examples}\nOne more: {question}\n{answer}",
    "Look at how these are answered.\n{examples}\n\nThen: {question}\n{answer}",
    "Solved examples, with the reasoning shown where given:\n{examples}\n\n"
    "Now solve: {question}\n{answer}",
    "Use the examples as a guide.\n{examples}\n\nQuestion to answer: {question}\n{answer}",
    "Previously answered:\n{examples}\n\nNew question: {question}\nAnswer: {answer}",
    "Demonstrations:\n{examples}\n\nTest: {question}\n{answer}",
)

# Next-turn dialog layouts: `{history}` is the earlier turns; the last pair is the next turn.
NEXT_TURN_DIALOG = (
    "Continue the conversation.\n{history}\n{user}: {question}\n{assistant}: {answer}",
    "Here is a conversation about the text.\n{history}\n{user}: {question}\n"
    "What does {assistant} say next?\n{answer}",
    "{history}\n{user}: {question}\nWrite the next turn for {assistant}.\n{answer}",
    "Dialogue so far:\n{history}\n{user}: {question}\n\nNext turn ({assistant}): {answer}",
    "Read the chat and give the reply.\n{history}\n{user}: {question}\n{assistant}: {answer}",
    "Conversation:\n{history}\n{user}: {question}\nHow should {assistant} respond?\n{answer}",
    "{history}\n{user}: {question}\n{assistant}: {answer}",
    "Predict the next response in this exchange.\n{history}\n{user}: {question}\n"
    "Response: {answer}",
    "A conversation is under way.\n{history}\n{user}: {question}\n"
    "{assistant}'s reply: {answer}",
    "Complete the dialog with the next line.\n{history}\n{user}: {question}\n{answer}",
)

# Wrappers of the raw text; half of the draws use the bare text (see `templates`).
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

# Strings between the text and its pairs; half of the draws use none.
COMPREHENSION_STARTS = (
    "Answer questions about the text above.", "Now answer the following.",
    "Questions about the passage:", "Use the text to answer these questions.",
    "Based on the article, respond below.", "Test your understanding.",
    "Here are questions on the reading.", "Reading comprehension:",
    "Answer according to the passage.", "What did you learn from the text?",
    "Some questions on the document above:", "Check your comprehension.",
)

# Strings opening the pairs of an inverted entry (pairs before the text).
INVERTED_QA_STARTS = (
    "", "Answer these questions after reading the text below.", "Questions first:",
    "Keep these questions in mind while reading.", "Here are some questions.",
    "The text that follows answers these:", "Questions and answers about the text below:",
    "Preview questions:", "Before reading, look at these questions.", "Q&A:",
)

# Strings introducing the text of an inverted entry.
INVERTED_TEXT_STARTS = (
    "", "The questions above are about this text:", "Here is the passage.",
    "Now the text:", "Source:", "Text for the questions above:", "Read the passage:",
    "Article:", "The answers come from this document:", "Context:",
)

# Separator between the entries (few-shot examples) of one chain.
ENTRY_SEPARATOR = "\n\n\n"

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
