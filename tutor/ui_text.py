"""Every string the web UI shows, in Chinese and English, and how the UI language is chosen.

One table for the chat tab (tutor/ui.py) and the Quiz / Path tabs (tutor/ui_modes.py), so a
translation is added or checked in one place.
"""
from __future__ import annotations

from typing import Any

from .glossary import language

TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "title": "用AI学AI · AI 助教",
        "subtitle": "根据学习笔记和论文回答深度学习与大模型问题，每句话都注明出处。点击答案里的 [n] 查看原文。",
        "placeholder": "输入你的问题，例如：ResNet 的残差连接解决了什么问题？（Enter 发送）",
        "send": "发送",
        "stop": "停止",
        "clear": "新对话",
        "sources": "来源",
        "sources_empty": "提问后，这里会列出答案引用的原文段落。点击答案中的 [n] 跳到对应段落。",
        "sources_for": "问题",
        "cited": "已引用",
        "not_cited": "检索到，未引用",
        "page": "第 {p} 页",
        "backend": "后端",
        "model": "模型",
        "index": "索引",
        "index_none": "还没有索引：请先运行 `tutor ingest`",
        "index_ok": "{n} 个段落",
        "topk": "检索段落数（top-k）",
        "lang": "界面语言",
        "examples": "试试这些问题",
        "about": "关于资料库",
        "about_md": (
            "答案只来自以下资料：\n\n"
            "- **五篇中文学习笔记**（“用AI学AI”）\n"
            "- **DeepSeek 论文**：DeepSeek-V2、V3、R1、DeepSeekMoE（MIT 许可）\n"
            "- **World Models**，David Ha 与 Jürgen Schmidhuber，https://worldmodels.github.io（CC BY 4.0）\n"
            "- **《动手学深度学习》d2l-zh 的 10 章**，作者 Aston Zhang、Zachary C. Lipton、Mu Li、"
            "Alexander J. Smola，https://zh.d2l.ai（文字以 CC BY-SA 4.0 许可）\n\n"
            "资料里没有的内容，助教会直说不知道。"
        ),
        "fb_label": "反馈（可选评论）",
        "fb_placeholder": "写下评论，再点答案下方的 👍 / 👎；或点完后在这里补充并点“提交评论”",
        "fb_send": "提交评论",
        "fb_thanks_up": "谢谢！已记录 👍",
        "fb_thanks_down": "谢谢！已记录 👎，我们会改进。",
        "fb_comment_saved": "评论已记录，谢谢！",
        "fb_none": "还没有可以评价的回答。",
        "fb_removed": "已取消评价。",
        "stage_rewriting": "理解追问…",
        "stage_retrieving": "检索笔记…",
        "stage_thinking": "思考中…",
        "thinking": "💭 思考过程",
        "rewritten": "↪ 追问理解为：{q}",
        "evidence": "📌 证据（回答依据的原文）",
        "stopped": "⏹ 已停止",
        "err_no_index": "⚠️ 还没有索引：请先运行 `tutor ingest`。",
        "err_index": "⚠️ 索引不可用：{e}",
        "err_llm": "⚠️ 模型出错：{e}",
        "err_model": "⚠️ 模型不可用：{e}",
        "err_empty": "⚠️ 请输入一个问题，例如：ResNet 的残差连接解决了什么问题？",
        "err_too_long": "⚠️ 问题太长了（{n} 字），上限是 {limit} 字：请一次只问一件事。",
        "err_busy": "⚠️ 还在回答前面的问题（已有 {n} 个在排队）：请稍候，或点“停止”。",
        "err_other": "⚠️ 出错了（{t}）：{e}",
        "ungrounded": "（这个回答没有可核对的引用，请谨慎参考。）",
        "simpler": "更简单", "deeper": "更深入",
        "level_beginner": "（更简单）", "level_advanced": "（更深入）",
        # the Quiz and Path tabs (tutor/ui_modes.py)
        "quiz_tab": "测验 / Quiz", "path_tab": "学习路线 / Path",
        "topic": "主题（学习路线的编号或标题、任意问题，留空则从全部笔记出题）",
        "n": "题数", "seed": "随机种子", "start": "出题", "answer": "你的答案", "check": "提交",
        "next": "下一题", "none": "点“出题”开始测验。", "no_questions": "这个主题下没有找到可以出题的段落，换个主题试试。",
        "q_of": "第 {i} / {n} 题", "correct": "✅ 正确", "partial": "🟡 部分正确", "wrong": "❌ 不对",
        "missing": "还缺：", "source": "资料原文", "key": "答案", "done_quiz": "测验完成：得分 {s:.1f} / {n}。",
        "progress": "学习进度", "no_progress": "还没有答题记录。", "topic_col": "主题", "attempts": "答题",
        "right": "答对", "score": "平均分", "done": "完成", "refresh": "刷新", "mark_done": "标记完成",
        "quiz_topic": "测验这一主题（3 题）", "pick": "选择主题", "passages": "笔记段落", "d2l": "d2l-zh 章节",
        "papers": "论文", "path_intro": "学习路线按笔记自己的路线图排列（不增添主题）。",
        "err": "⚠️ 出错了：{e}",
    },
    "en": {
        "title": "Learn AI with AI · AI tutor",
        "subtitle": "Answers about deep learning and LLMs from study notes and papers, with a source for each "
                    "claim. Click an [n] in an answer to see the passage.",
        "placeholder": "Ask a question, e.g. What is Mixture of Experts? (Enter to send)",
        "send": "Send",
        "stop": "Stop",
        "clear": "New chat",
        "sources": "Sources",
        "sources_empty": "After you ask, the passages the answer cites are listed here. Click an [n] in the "
                         "answer to jump to its passage.",
        "sources_for": "Question",
        "cited": "cited",
        "not_cited": "retrieved, not cited",
        "page": "p. {p}",
        "backend": "Backend",
        "model": "Model",
        "index": "Index",
        "index_none": "no index yet: run `tutor ingest` first",
        "index_ok": "{n} passages",
        "topk": "Passages to retrieve (top-k)",
        "lang": "Interface language",
        "examples": "Try these questions",
        "about": "About the corpus",
        "about_md": (
            "Answers come only from:\n\n"
            "- **Five Chinese study notes** (\"Learn AI with AI\")\n"
            "- **DeepSeek papers**: DeepSeek-V2, V3, R1 and DeepSeekMoE (MIT license)\n"
            "- **World Models** by David Ha and Jürgen Schmidhuber, https://worldmodels.github.io (CC BY 4.0)\n"
            "- **10 chapters of 动手学深度学习 (d2l-zh, Dive into Deep Learning)** by Aston Zhang, "
            "Zachary C. Lipton, Mu Li and Alexander J. Smola, https://zh.d2l.ai (text under CC BY-SA 4.0)\n\n"
            "When the answer is not in these sources, the tutor says so."
        ),
        "fb_label": "Feedback (optional comment)",
        "fb_placeholder": "Write a comment, then click 👍 / 👎 under the answer — or rate first, then add a "
                          "comment here and press “Send comment”",
        "fb_send": "Send comment",
        "fb_thanks_up": "Thanks! Recorded 👍",
        "fb_thanks_down": "Thanks! Recorded 👎 — we'll improve.",
        "fb_comment_saved": "Comment recorded, thank you!",
        "fb_none": "There is no answer to rate yet.",
        "fb_removed": "Rating removed.",
        "stage_rewriting": "reading the follow-up…",
        "stage_retrieving": "searching the notes…",
        "stage_thinking": "thinking…",
        "thinking": "💭 Thinking",
        "rewritten": "↪ Follow-up read as: {q}",
        "evidence": "📌 Evidence (what the answer stands on)",
        "stopped": "⏹ stopped",
        "err_no_index": "⚠️ No index yet: run `tutor ingest` first.",
        "err_index": "⚠️ The index is not usable: {e}",
        "err_llm": "⚠️ The model failed: {e}",
        "err_model": "⚠️ The model is not available: {e}",
        "err_empty": "⚠️ Please type a question, e.g. What is Mixture of Experts?",
        "err_too_long": "⚠️ That question is too long ({n} characters; the limit is {limit}): please ask about "
                        "one thing at a time.",
        "err_busy": "⚠️ Still answering your earlier questions ({n} waiting): please wait, or press Stop.",
        "err_other": "⚠️ Something went wrong ({t}): {e}",
        "ungrounded": "(This answer has no citation to check it against; treat it with care.)",
        "simpler": "Simpler", "deeper": "Deeper",
        "level_beginner": "(simpler) ", "level_advanced": "(deeper) ",
        # the Quiz and Path tabs (tutor/ui_modes.py)
        "quiz_tab": "测验 / Quiz", "path_tab": "学习路线 / Path",
        "topic": "Topic (a learning-path number or title, any question; empty: all the notes)",
        "n": "Questions", "seed": "Seed", "start": "New quiz", "answer": "Your answer", "check": "Check",
        "next": "Next question", "none": "Press “New quiz” to start.",
        "no_questions": "No passage on this topic gave a question; try another topic.",
        "q_of": "Question {i} of {n}", "correct": "✅ Correct", "partial": "🟡 Partly right", "wrong": "❌ Not quite",
        "missing": "Missing: ", "source": "The source says", "key": "Answer", "done_quiz": "Quiz done: {s:.1f} / {n}.",
        "progress": "Progress", "no_progress": "No attempts yet.", "topic_col": "Topic", "attempts": "Attempts",
        "right": "Correct", "score": "Mean score", "done": "Done", "refresh": "Refresh", "mark_done": "Mark done",
        "quiz_topic": "Quiz this topic (3 questions)", "pick": "Choose a topic", "passages": "Note passages",
        "d2l": "d2l-zh chapters", "papers": "Papers",
        "path_intro": "The path follows the notes' own roadmaps (no topic is added).", "err": "⚠️ Something went wrong: {e}",
    },
}

LANG_CHOICES = [("自动 / Auto", "auto"), ("中文", "zh"), ("English", "en")]

EXAMPLES = [
    "ResNet 的残差连接解决了什么问题？",
    "What is Mixture of Experts?",
    "DeepSeek-V3 有多少参数？",
    "Transformer 的自注意力是怎么计算的？",
    "What is a world model?",
]


def ui_lang(choice: str | None, text: str = "") -> str:
    """The interface language: the toggle, or in "auto" the learner's language (Chinese by default)."""
    if choice in ("zh", "en"):
        return choice
    return language(text) if text and text.strip() else "zh"


def t(lang: str, key: str, **kw: Any) -> str:
    s = TEXT.get(lang, TEXT["zh"])[key]
    return s.format(**kw) if kw else s
