"""The release's pools for a text's layout and formats (official mode), as data, in its order.

The strings of microsoft/LMOps `instruction_pretrain/utils/read_compre_pt.py` in our structure
(its pair patterns are in `template_official_patterns`). The order and the sizes matter: the
release draws each choice as the first draw of a generator seeded afresh with the text's seed
(`templates`), so which entries share an index decides how its choices go together. Where the
release pads a pool (half the read starts bare, half the comprehension starts empty) or repeats
a list (its 24 numbered label forms twice), so do we.
"""

_ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII", "XIII", "XIV",
          "XV", "XVI", "XVII", "XVIII", "XIX", "XX", "XXI", "XXII", "XXIII", "XXIV", "XXV", "XXVI")
_LETTERS = "abcdefghijklmnopqrstuvwxyz"

# ---- Classic layout: read start (half of them the bare text), read end, comprehension start
# (half of them empty; the 16th is two strings run together, a missing comma in the release).

_WORDED_READ_STARTS = (
    "Please answer some questions about the following article:\n{context}",
    "Read this article and answer questions\n{context}",
    "Answer some questions about this article:\n{context}",
    "Here are some questions about this article: {context}", "Article: {context}",
    "Read this text: {context}", "Given the article: {context}", "Context: {context}",
    "Use this article to answer questions: {context}", 'Answer based on context "{context}"',
    "Read the following article and respond accordingly:\n\n{context}",
    "Delve into this article and answer the following questions:\n{context}",
    "Explore the text below and provide your answers\n\n{context}",
    "Engage with this article and provide your responses:\n{context}",
    "Assess your understanding of the article by answering these questions: {context}",
    "Dive into the content provided and offer your insights: {context}",
    "Your comprehension will be tested with questions based on this article\n{context}",
    'Analyze the text and formulate your responses: "{context}"',
    "Navigate through this article and answer the questions posed\n\n{context}",
    "Immerse yourself in this article and provide your interpretations:\n{context}",
    "Evaluate your knowledge of the article with these questions\n{context}",
    "Examine the content and demonstrate your understanding:\n{context}",
    "Interact with the article by answering the following questions:\n{context}",
    'Reflect on the text and provide your answers "{context}"',
    "Navigate through the provided article and answer the questions:\n{context}",
    "Interpret the article and respond to the queries below\n\n{context}",
    "Your understanding of the article will be assessed through these questions:\n{context}",
    "Engage with the material and offer your insights:\n\n{context}",
    "Demonstrate your comprehension of the article by answering these questions:\n{context}",
    "Explore the text and articulate your responses\n\n{context}",
    "Answer questions based on this article:\n{context}", "Read and respond:\n{context}",
    "Questions follow. Read the article and answer: {context}",
    "Use the article to answer: {context}", "Read and answer questions below:\n{context}",
    "Explore the article and respond:\n{context}", "Answer based on the following: {context}",
    "Respond to the article:\n{context}", "Article context\n{context}",
    "Questions to follow article:\n\n{context}", "Read and provide answers:\n{context}",
    "Your thoughts?\n{context}", "Assessment: {context}", "Give your take on:\n{context}",
    "Questions about this text:\n{context}", "Respond to the text:\n{context}",
    "Context for questions:\n{context}", "Discuss the article:\n{context}",
    "Provide your insights:\n{context}", "Answer questions here\n{context}",
)
READ_STARTS = ("{context}",) * len(_WORDED_READ_STARTS) + _WORDED_READ_STARTS
READ_ENDS = (" ", "\n", "\n\n")

_WORDED_COMPREHENSION_STARTS = (
    "Please answer some questions about the above article.",
    "Answer some questions about the above article.", "What are the answers to these questions?",
    "Now answer these questions:", "Now answer the following questions",
    "What are the answers to the questions or completions:",
    "How would one answer these questions:",
    "Use evidence from the text to answer these questions:",
    "Use this above article to answer the questions:",
    "Answer the following questions based on the article", "Answer these questions:",
    "Based on the above article, answer questions.",
    "Write some question-answer pairs about the above article:",
    "Respond to the following questions based on the above article",
    "Upon reading the article, answer the following questions:",
    "Evaluate your understanding of the article by answering the following questions:Questions "
    "about the article above:",
    "Answer questions about the article: ",
    "Ready to solve some puzzles? Dive into the questions below based on the article.",
    "Now, let's crack these questions open!", "Time for a quiz! Answer the following questions:",
    "Unlock the secrets of the article with these questions:",
    "Get ready to unravel the mysteries within! Answer the questions below:",
    "Connect the dots between the article and these questions:",
    "Let the article be your guide as you tackle these questions:",
    "Engage your mind with these questions inspired by the article:",
    "Curious minds, it's your turn! Answer these questions:",
    "Article analysis time! Answer the questions below:",
    "Navigate through these questions and uncover insights from the article:",
    "Transform your understanding into answers with these questions:",
    "Explore the depths of comprehension with these questions:",
    "Challenge yourself with these questions inspired by the article:",
    "Discover new perspectives through these questions:",
    "Get inquisitive! Answer the questions below based on the article:",
    "It's quiz time! See how much you've learned by answering these questions:",
    "Solve the puzzle of the article with these questions:",
    "Put your comprehension to the test with these questions:",
    "Probe deeper into the article with these thought-provoking questions:",
    "Reflect on the article and respond to these questions:",
    "Chart your comprehension journey by answering these questions:",
    "Uncover insights from the article with these questions:",
    "Ready to explore? Answer these questions inspired by the article:",
    "Get your thinking caps on! Answer the questions below based on the article:",
    "Illuminate your understanding with these questions:",
    "Unlock the article's secrets by answering these questions:",
    "Navigate through these questions and reveal your insights from the article:",
    "Dive into the questions about the article above:",
    "Put your thinking cap on and tackle these questions about the article:",
    "Get ready for a mental workout! Here are the questions based on the article:",
    "The article has spoken, now it's your turn to answer these questions:",
    "Challenge accepted? Answer the following questions inspired by the article:",
    "Your journey through the article isn't over yet! Answer these questions:",
    "Unravel the mysteries of the article by answering these questions:",
    "Let's explore the depths of the article together. Answer the questions below:",
    "The context is your map, these questions are your compass. Answer them:",
    "Ready to decode the text's message? Start by answering these questions:",
    "Embark on a quest for knowledge! Answer the questions inspired by the passage:",
    "Connect the dots between the article and your understanding with these questions:",
    "Test your comprehension! Answer the following questions based on the context:",
    "The article has ignited your curiosity, now satisfy it by answering these questions:",
    "Challenge your intellect! Answer these questions derived from the article:",
    "The article has opened doors to new ideas. Step through them with these questions:",
    "Ready to apply what you've learned? Answer these questions about the article:",
    "Uncover hidden truths with these questions inspired by the passage:",
    "Your journey through the article isn't complete until you've answered these questions:",
    "Illuminate your understanding of the article by answering these questions:",
    "The article has sparked questions, now it's your turn to answer them:",
    "Deepen your understanding of the text snnipet with these thought-provoking questions:",
    "Navigate through the article's depths with these guiding questions:",
    "Reflect on the article's content and respond to these questions:",
    "Chart your path through the article with these insightful questions:",
    "Unearth the article's treasures by answering these questions:",
    "Ready for a challenge? Answer these questions inspired by the text:",
    "The article has laid the groundwork, now it's your turn to build upon it with these "
    "questions:",
    "Illuminate your comprehension of the article with these enlightening questions:",
    "Unlock the article's secrets by answering these revealing questions:",
    "Embark on an exploration of the article's themes with these probing questions:",
    "Craft your own set of Q&A for the above passage:",
    "Create question-answer duos inspired by the article:",
    "Exercise your knowledge by generating Q&A pairs for the article:",
    "Generate your own set of questions and answers about the above article:",
    "Put your comprehension to the test - create question-answer pairs for the context:",
    "Challenge yourself with this task: devise question-answer pairs related to the above article:",
    "Immerse yourself in active learning by formulating question-answer pairs about the article:",
    "Practice your understanding by developing question-answer pairs for the above article:",
)
COMPREHENSION_STARTS = _WORDED_COMPREHENSION_STARTS + ("",) * len(_WORDED_COMPREHENSION_STARTS)

# ---- Inversion: the pairs (`{pairs}`) first, then the text (`{context}`).

INVERTED_QA_STARTS = (
    "{pairs}", "Here are a few question-answering pairs, write an article based on them:\n{pairs}",
    "Read these Q&A pairs and write a passage\n\n{pairs}",
    "Write a piece of text after reading the dialogue below\n{pairs}",
    "Here are some questions and their answers about an article, try to reproduce the article: "
    "{pairs}",
    "Exercise: {pairs}", 'Read this dialogue: "{pairs}"',
    "Create an article using the following question-answer pairs:\n{pairs}",
    "Construct a passage using the provided Q&A examples:\n\n{pairs}",
    "Explore the following dialogue and craft a written piece:\n{pairs}",
    "Utilize the given Q&A pairs to compose a narrative:\n{pairs}",
    "Reproduce an article based on the questions and answers provided:\n{pairs}",
    "Generate content inspired by the following dialogue:\n{pairs}",
    "Enhance your writing skills by transforming the provided Q&A pairs into a cohesive article:\n"
    "{pairs}",
    "Immerse yourself in the dialogue below and produce a written response:\n{pairs}",
    "Practice your writing abilities by elaborating on the following Q&A examples:\n{pairs}",
    "Craft a narrative using the question-answer pairs provided:\n\n{pairs}",
    "Interpret the dialogue and create a written piece in response:\n{pairs}",
    "Challenge yourself to expand upon the given Q&A pairs:\n{pairs}",
    "Develop your storytelling skills by composing an article from the following Q&A examples:\n"
    "{pairs}",
    "Compose a narrative based on the questions and answers outlined below:\n{pairs}",
    "Engage in creative writing using the dialogue provided:\n{pairs}",
    "Exercise your writing muscles by transforming the Q&A pairs into an article:\n{pairs}",
    "Transform the dialogue into a written composition:\n{pairs}",
    "Harness your imagination to expand upon the following question-answer pairs:\n{pairs}",
    "Create an article using these Q&A examples:\n{pairs}",
    "Craft a passage based on these question-answer pairs:\n\n{pairs}",
    "Use the following dialogue to write a piece of text:\n{pairs}",
    "Write an article inspired by these Q&A pairs:\n{pairs}",
    "Reproduce an article based on these questions and answers:\n{pairs}",
    "Generate content from the following dialogue:\n{pairs}",
    "Compose an article using these Q&A pairs:\n{pairs}",
    "Practice your writing skills with these Q&A examples:\n{pairs}",
    "Craft a story using these question-answer pairs:\n\n{pairs}",
    "Expand upon these Q&A pairs to create an article:\n{pairs}",
    "Develop a narrative from these questions and answers:\n{pairs}",
    "Use the dialogue to inspire your writing:\n{pairs}",
    "Transform these Q&A pairs into an article:\n{pairs}",
    "Write a composition based on the dialogue:\n\n{pairs}",
    "Create a story using these Q&A examples:\n{pairs}",
    "Practice your writing skills with this dialogue:\n\n{pairs}",
    "Expand on these question-answer pairs to create content:\n\n{pairs}",
)
INVERTED_QA_ENDS = (
    " ", "\n", "\n\n", "\n\n", "\n\n\n", "\n", "\n\n", "\n\n",
)
INVERTED_TEXT_STARTS = (
    "{context}", "Please write the text.\nText: {context}",
    "Generate a passage based on the above QA pairs\nPassage: {context}",
    "Now compose a passage: {context}",
    "Write a passage based on the provided exercise.\n\nPassage:\n{context}",
    "Compose a passage using the above question-answer examples: {context}",
    "Craft a piece of text that encapsulates the QA pairs provided above.\nText: {context}",
    "Please write a text based on the question-answer pairs.\n\n{context}",
    "Generate a passage contains the knowledge info of the the given question-answer pairs.\n\n"
    "Passage:\n{context}",
    "Compose a narrative that reflects the content of the QA pairs above.\n\nNarative:\n{context}",
    "Now, produce a passage based on the problems and solutions:\n\n{context}",
    "Craft a passage inspired by the conversation.\nPassage: {context}",
    "Create a text that encompasses the essence of the QA pairs above.\n\n{context}",
    "Generate a passage based on the provided question-answer pairs.\n{context}",
    "Compose a narrative using the QA pairs as inspiration.\n\n{context}",
    "Please write a passage that reflects the content of the QA pairs.\nPassage: {context}",
    "Generate a text based on the given problems and solutions.\nText: {context}",
    "Craft a passage that captures the essence of the QA pairs above.\n\nCrafted Passage: "
    "{context}",
    "Compose a literary piece inspired by the enigmatic dance of questions and answers.\n\n"
    "Literary piece: {context}",
    "Let your imagination soar as you craft a narrative woven from the threads of these Q&A "
    "pairs.\nOk, here is the narative:\n{context}",
    "Inscribe the whispers of knowledge into the fabric of a captivating article. Article: "
    "{context}",
    "Paint a vivid tapestry of words that echoes the symphony of questions and answers.\n\n"
    "{context}",
    "Embark on a literary voyage guided by the compass of these question-answer constellations.\n"
    "\nAnswer: {context}",
    "Breathe life into the silent dialogue of questions and answers, weaving them into a literary "
    "masterpiece.\nMasterpiece: {context}",
    "Forge a literary saga from the molten embers of curiosity and enlightenment.\nSaga: {context}",
    "Dive into the labyrinth of inquiry and emerge with a literary gem forged from the depths of "
    "understanding.\n\nGem: {context}",
    "Illuminate the shadows of uncertainty with the torchlight of your pen, crafting a narrative "
    "that resonates with wisdom.\nCrafted narrative: {context}",
    "Harness the raw energy of curiosity to sculpt a narrative that transcends the boundaries of "
    "imagination.\nNarrative: {context}",
    "Compose a narrative symphony that harmonizes the discordant notes of inquiry and insight. "
    "Symphony: {context}",
    "Fashion a literary mosaic from the fragments of knowledge scattered by the interplay of "
    "questions and answers.\n\nMosaic:\n{context}",
    "Craft a literary opus that captures the essence of the quest for knowledge, expressed "
    "through the medium of questions and answers.\nOpus:\n{context}",
    "Sculpt a narrative sculpture from the marble of understanding, chiseling away the excess to "
    "reveal the beauty within.\nSculpture:\n{context}",
    "Write a narrative that dances gracefully along the tightrope between question and answer, "
    "balancing curiosity with revelation.\nNarrative: {context}",
    "Spin a tale that spins like a whirlwind, drawing the reader into the vortex of inquiry and "
    "discovery.\nTale:\n{context}",
    "Forge a literary sword from the fire of inquiry, tempered in the waters of comprehension, "
    "ready to cut through the fog of uncertainty.\nSword:\n{context}",
    "Craft a narrative quilt stitched together from the patchwork of questions and answers, each "
    "thread contributing to the tapestry of understanding.\nQuilt:\n{context}",
    "Compose a literary kaleidoscope that refracts the spectrum of human curiosity into a "
    "dazzling array of words.\n\nKaleidoscope:\n{context}",
    "Weave a narrative spell that enchants the reader, drawing them deeper into the labyrinth of "
    "inquiry with each turn of phrase. Spell: {context}",
    "Pen a narrative sonnet that sings the praises of knowledge, each stanza a testament to the "
    "power of questions and answers. Sonnet: {context}",
    "Produce a passage that synthesizes the knowledge conveyed in the given question-answer "
    "pairs.\n\nSynthesized passage:\n{context}",
    "Craft a narrative that mirrors the essence of the conversation above.\n\nMirrored "
    "narrative:\n{context}",
    "Now, create a passage inspired by the questions and answers: {context}",
    "Compose a passage that draws inspiration from the provided QA examples.\nInspired passage: "
    "{context}",
    "Develop a text that encapsulates the core concepts discussed in the question-answer pairs "
    "above.\nEncapsulated text: {context}",
    "Generate a passage that extrapolates on the themes presented in the question-answer pairs.\n"
    "Extrapolated passage: {context}",
    "Write a narrative using the QA pairs as a foundation for inspiration.\n\n{context}",
    "Please generate a passage that captures the essence of the QA pairs.\n\nCaptured passage: "
    "{context}",
    "Develop a text based on the provided QA pairs.\n\nAnswer:\n{context}",
    "Craft a passage that embodies the key insights conveyed in the conversation above.\nEmbodied "
    "passage: {context}",
    "Now, create a passage utilizing the following QA pairs: {context}",
    "Suppose the provided question-answering pairs serve as testing tasks for a reading material. "
    "What would be the accompanying text?\nAccompanying text: {context}",
    "Imagine the conversations above function as assessments for a reading material. What would "
    "be the corresponding text?\nCorresponding text: {context}",
    "If the QA pairs provided are used as assessments for a reading material, what material would "
    "you expect to be included?\nExpected material: {context}",
    "Consider the provided dialogue as evaluation criteria for a reading material. What would be "
    "the content of the reading material?\nContent of material: {context}",
    "Picture the QA pairs above as tests for a reading material. What would be the content of the "
    "material being tested?\nTested material: {context}",
    "Imagine the provided questions and answers are tests for a reading material. What material "
    "would you anticipate students reading?\nAnticipated material: {context}",
    "Suppose the QA pairs serve as assessment prompts for a reading material. What would be the "
    "text that students need to read?\nRequired text: {context}",
    "If the QA pairs above are used to assess comprehension of a reading material, what material "
    "do you think students would need to read?\n\n{context}",
    "Consider the provided questions and answers as assessments for a reading material. What "
    "material would be assigned for students to read?\n\nAssigned material: {context}",
    "Imagine the questions and answers provided are assessments for a reading material. What text "
    "do you think students would be required to read?\n\nRequired material: {context}",
)

# ---- Options: a start, then per option an item name (its label, if any, within) and an end.

OPTION_STARTS = (
    "", "OPTIONS:", "Possible answers:", "Available choices:", "Options:", "OPT:", "Choose from:",
    "Choose your answer from:", "Available options:", "Options are:", "Choices:",
    "Pick your answer from:", "Select from:", "Pick from:", "Select from the following.",
    "pick from the following.",
)
_BULLETS = ("\n - ", "\n -", "\n -- ", "\n --", "\n + ", "\n +", "\n * ", "\n *", "\n- ", "\n+ ",
            "\n* ", "\n[-] ", "\n[+] ", " - ", " -- ", " + ", " * ", " -", " --", " +", " *",
            " [+] ", " [-] ")
_ROMAN_FORMS = (" {}. ", " [{}] ", " ({}) ", " ({}). ", "\n{}. ", "\n[{}] ", "\n({}) ", "\n({}). ")
_ORDINAL_FORMS = ("\n[{}]. ", "\n({}). ", "\n{}). ", "\n ({}). ", "\n {}). ", " ({}). ", " {}). ",
                  " {}. ")
# The names of 26 numbered items: each roman form in lower then upper case, then each ordinal
# form with a, A and 1 (these 24 twice: the release's second copy, meant to end in ":", repeats
# the first).
NUMBERED_ITEMS = (
    tuple(tuple(form.format(numeral) for numeral in numerals)
          for numerals in (tuple(n.lower() for n in _ROMAN), _ROMAN) for form in _ROMAN_FORMS)
    + tuple(tuple(form.format(label) for label in labels) for form in _ORDINAL_FORMS
            for labels in (_LETTERS, _LETTERS.upper(), range(1, 27))) * 2)
# Option item names: one bullet for every option, or a numbered list.
OPTION_ITEMS = tuple((bullet,) * 26 for bullet in _BULLETS) + NUMBERED_ITEMS
OPTION_ITEM_ENDS = (("",) * 26, (";",) * 26, ("",) * 26)

# ---- Dialog: join + start after the text, speakers (asker, answerer: the bullets are shared by
# both), the end of a question (between it and the answer's speaker), the separator of turns.

DIALOG_JOINS = ("\n\n", "\n", " ", " | ")
DIALOG_STARTS = (
    "", "DIALOG:", "Dialog:", "CONVERSATION:", "Conversation:", "Convo:",
    "Read the following conversation:", "A 2 person conversation:", "A 2 person dialog:",
    "A dialog between 2 people:", "See the 2 person dialog:", "Conversation transcript:",
    "Phone call:", "2-way dialog:", "Example conversation:",
)
DIALOG_SPEAKERS = tuple((bullet, bullet) for bullet in _BULLETS) + (
    ("\n  A. ", "\n  B. "), ("\nA. ", "\nB. "), ("\n[A]. ", "\n[B]. "), ("\n[1]. ", "\n[2]. "),
    ("\n[a]. ", "\n[b]. "), ("\n(A) ", "\n(B) "), ("\n(1) ", "\n(2) "), ("\n[a]. ", "\n[b]. "),
    ("\n[x]. ", "\n[y]. "), ("\nSpeaker 1: ", "\nSpeaker 2: "), ("\nSpeaker A: ", "\nSpeaker B: "),
    ("\nPerson 1: ", "\nPerson 2: "), ("\nPerson A: ", "\nPerson B: "),
    ("\nSpeaker 1) ", "\nSpeaker 2) "), ("\nSpeaker A) ", "\nSpeaker B) "),
    ("\nPerson 1) ", "\nPerson 2) "), ("\nPerson A) ", "\nPerson B) "),
    ("\nAnonymous 1) ", "\nAnonymous 2) "), ("\nAnonymous A) ", "\nAnonymous B) "),
    ("\n  Person 1) ", "\n  Person 2) "), ("\n Person A) ", "\n Person B) "),
    ("\n Anonymous 1) ", "\n Anonymous 2) "), ("\n  Anonymous A) ", "\n  Anonymous B) "),
    ("\nPerson X: ", "\nPerson Y: "), ("\nSpeaker X) ", "\nSpeaker Y) "), ("\nP1: ", "\nP2: "),
    ("\n P1) ", "\n P2) "))
DIALOG_ENDS = ("", ";", ".")
DIALOG_SEPARATORS = ("", "\n")

# ---- Next-turn dialog: the text, the earlier turns `{history}`, the last turn `{next_turn}`.

NEXT_TURN_DIALOG = (
    "{context}\n\n\nRead the dialog and predict the next turn. {history}\n\n{next_turn}",
    '{context}\n\n\nExample conversation: Write the response (start with "Response:") {history}\n'
    "\nResponse: {next_turn}",
    "{context}\n\n\nSee the conversation examples, and predict the next turn. {history}\n\n"
    "{next_turn}",
    "{context}\nComplete this dialogue: {history}\n{next_turn}",
    "{context}\n\n{history}\nNext turn: {next_turn}",
    "{context}\n\nProblem: What could be the the next turn? {history}\nA: {next_turn}",
    "{context}\n\nQUESTION: Write another turn of this conversation. {history}\nANS: {next_turn}",
    "{context}\n\nquestion: Write another turn. {history}\nturn: {next_turn}",
    "{context}\n\n\nQ: See the conversation. {history}\n****\nNext: {next_turn}",
    "{context}\n\nConsider this last turn dialog: {next_turn}\nWhat are the preceding dialogs?\n"
    "Preceding dialog: {history}",
    "{context}\n\n\nLast turn conversation: {next_turn} The preceding conversation:\n\nPreceding "
    "conversation: {history}",
    "{context}\n\nWrite an example conversation that led to this. This: {next_turn}\nPreceding "
    "conversation: {history}",
    "{context}\n\n\nSee the last example. Predict the preceding dialog. {next_turn}\nPreceding "
    "conversation: {history}",
    "{context}\n\n\nProblem: If this is the last turn dialog, what came before? {next_turn}\n"
    "++++++++++\nBefore this should be: {history}",
    "{context}\n\n\nQuestion:\nImagine the conversation that came before this turn\n{next_turn}\n"
    "\nAnswer:\n{history}",
)

# ---- Numbered questions: the text, then the `{questions}` and `{answers}` items.

NUMBERED_QUESTIONS = (
    "Problem: {context}\n{questions}\nAnswer: {answers}",
    "Problem: Here are a few questions:\n{questions}\n\nAnswer the above questions after reading "
    "the text: {context}\nAnswer: {answers}",
    "Q: {context}\n\nAnswer the following questions:\n{questions}\nA: {answers}",
    "Question:\nRead the text and answer the questions.\n{context}\n{questions}\n\nNumbered "
    "answers:\n{answers}",
    "Answer the questions at the end based on the text.\n\n{context}\n\n{questions}\n\nNumbered "
    "answers:\n\nA: {answers}",
    "Question: {context} {questions} Provide a numbered list of answers.\n****\nA numbered of "
    "answers: {answers}",
    "Q: {context}\n\n{answers}\n\nNumbered questions:\n{questions}",
    "input: Make use of the article to answer the questions. {context} {questions}\n"
    "numbered_answers: {answers}",
    "input: {context} {questions} Return numbered answers in your output.\n\noutput: {answers}",
    "question: {context}\n{questions}\n****\nanswer: {answers}",
    "{context} What are the answers to this following set of questions: {questions}\nAnswer: "
    "{answers}",
)

# ---- Inline few-shot: (template with `{context}{examples}{test}`, solved example, test), the
# explaining ones used when every pair of the entry has a rationale.

INLINE_EXPLAINED = (
    ("You will be given a context of a task first, then some examples. Follow the examples to "
     "solve a new instance of the task.\n{context}\n\n{examples}{test}",
     "{input}\nSolution: {output}\nWhy? {explanation}\n\n",
     "New input: {input}\nSolution: {output}"),
    ("Given the task background, example input & output, solve the new input case.\n{context}\n"
     "{examples}{test}", "Example: {input}\nOutput: {output}\n{explanation}\n\n",
     "New input case for you: {input}\nOutput: {output}"),
    ("Teacher: {context}\nTeacher: Now, understand the task background? If you are still "
     "confused, see the following example(s):\n{examples}{test}",
     "{input}\nSolution: {output}\nReason: {explanation}\n\n",
     "Now, solve this instance: {input}\nStudent: {output}"),
    ("{context}\n\n{examples}{test}",
     "Example input: {input}\nExample output: {output}\nExample explanation: {explanation}\n",
     "Now, solve this instance: {input}\nStudent: {output}"),
    ("Context: {context}\nSee tasks below:\n{examples}{test}",
     "Problem: {input}\nSolution: {output}\nExplanation: {explanation}\n\n",
     "Problem: {input}\nSolution: {output}"),
    ("{context}\n{examples}{test}",
     "QA Example: {input}\nExample solution: {output}\nExample explanation: {explanation}\n\n",
     "Problem: {input}\nSolution: {output}"),
    ("{context}\n{examples}{test}",
     "One task example: {input}\nSolution is here: {output}\nExplanation: {explanation}\n\n",
     "Now, solve this: {input}\nSolution: {output}"),
    ("Part 1. Context\n{context}\nPart 2. Task Example\n{examples}{test}",
     "{input}\nAnswer: {output}\nExplanation: {explanation}\n",
     "Part 3. Exercise\n{input}\nAnswer: {output}"),
    ("{context}\n\nLet me give you some task examples: {examples}{test}",
     "{input}\nThe answer to this example can be: {output}\nHere is why: {explanation}\n\n",
     "OK. solve this:\n{input}\nAnswer: {output}"),
    ("{context}\nQ&A Examples are below.\n{examples}{test}",
     "Q: {input}\nA: {output}\nRationale: {explanation}\n", "Q: {input}\nA: {output}"),
)
INLINE_PLAIN = (
    ("You will be given a context of a task first, then some examples. Follow the examples to "
     "solve a new instance of the task.\n{context}\n\n{examples}{test}",
     "{input}\nSolution: {output}\n\n", "New input: {input}\nSolution: {output}"),
    ("Given the task background, example input & output, solve the new input case.\n{context}\n"
     "{examples}{test}", "Example: {input}\nOutput: {output}\n\n",
     "New input case for you: {input}\nOutput: {output}"),
    ("Teacher: {context}\nTeacher: Now, understand the task background? If you are still "
     "confused, see the following example(s):\n{examples}{test}", "{input}\nSolution: {output}\n\n",
     "Now, solve this instance: {input}\nStudent: {output}"),
    ("{context}\n\n{examples}{test}", "Example input: {input}\nExample output: {output}\n",
     "Now, solve this instance: {input}\nStudent: {output}"),
    ("Context: {context}\nSee task examples below:\n{examples}{test}",
     "Problem: {input}\nSolution: {output}\n\n", "Problem: {input}\nSolution: {output}"),
    ("{context}\n{examples}{test}", "Example: {input}\nExample solution: {output}\n\n",
     "Problem: {input}\nSolution: {output}"),
    ("{context}\n{examples}{test}", "One example: {input}\nSolution is here: {output}\n\n",
     "Now, solve this: {input}\nSolution: {output}"),
    ("Part 1. Context\n{context}\nPart 2. Task Example\n{examples}{test}",
     "{input}\nAnswer: {output}\n", "Part 3. Exercise\n{input}\nAnswer: {output}"),
    ("{context}\n\nLet me give you some QA examples: {examples}{test}",
     "{input}\nThe answer to this example can be: {output}\n\n",
     "OK. solve this:\n{input}\nAnswer: {output}"),
    ("{context}\nQ&A Examples are below.\n{examples}{test}", "Q: {input}\nA: {output}\n",
     "Q: {input}\nA: {output}"),
)
