"""The words that tell what a message is, per locale, next to the texts they answer with.

handlers/command_words.py and handlers/intent.py read these lists; adding a synonym
people keep typing is a change here, not in code. Every entry is matched after
normalisation (NFKC, case-folded, punctuation and spaces dropped), so `状态。`,
`状 态` and `Status!` are all `状态`/`status`.
"""
from __future__ import annotations

# Whole-message commands: the text is the command and nothing else. The feature that owns a
# command declares it with these words (`words=command_words("status")`).
COMMAND_WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "status": {
        "zh": ("状态", "我的", "本周", "我的数据", "进度如何", "进展如何", "进展", "我的状态", "本周状态", "本周进度",
               "我的进度", "本周情况", "这周", "这周情况", "本周怎么样", "这周怎么样", "查看状态", "查看本周", "看看进度",
               "查状态", "我的本周", "本周动作", "本周关键动作", "我的关键动作", "现在什么状态", "进度怎么样",
               "我这周", "我本周"),
        "en": ("status", "my status", "this week", "my week", "progress", "how am i doing"),
    },
    "help": {
        "zh": ("帮助", "?", "菜单", "怎么用", "如何使用", "使用说明", "说明", "用法", "怎么填", "怎么写", "格式",
               "怎么操作", "教程", "求助", "不会用", "看不懂", "指令", "命令", "功能", "能做什么", "你能做什么",
               "有什么功能", "怎么玩", "咋用", "这个怎么用", "使用帮助", "帮助文档", "帮我"),
        "en": ("help", "menu", "how to use", "usage", "what can you do", "commands", "manual"),
    },
    "goals": {
        "zh": ("目标", "有哪些目标", "目标列表", "我的目标", "查看目标", "目标有哪些", "所有目标", "部门目标",
               "目标编号", "有什么目标", "看看目标", "目标清单", "okr", "我的okr", "本季度目标", "团队目标"),
        "en": ("goals", "my goals", "goal list", "list goals", "okrs"),
    },
    "done": {
        "zh": ("完成", "已完成", "完成了", "搞定", "搞定了", "已搞定", "做完了", "完成啦", "已经完成", "已经完成了",
               "完工", "做好了"),
        "en": ("done", "finished", "complete", "completed", "mark done"),
    },
    "not_done": {
        "zh": ("未完成", "没完成", "没有完成", "没做完", "还没完成", "做不完", "完不成", "没能完成"),
        "en": ("not done", "not finished", "unfinished"),
    },
    "cancel": {
        "zh": ("取消", "算了", "不要了", "退出", "不填了", "放弃"),
        "en": ("cancel", "quit", "stop", "never mind"),
    },
    "resume": {
        "zh": ("继续", "接着填", "继续填", "接着来", "继续填写"),
        "en": ("continue", "resume", "go on"),
    },
    "my_feedback": {
        "zh": ("我的反馈", "我收到的反馈", "查看反馈", "看看反馈"),
        "en": ("my feedback",),
    },
}

# Chit-chat: said to be friendly, never an action. The answer is a short friendly line
# with the week's status and the one-line format.
CHAT_WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "greeting": {
        "zh": ("你好", "您好", "你好呀", "你好啊", "hello", "hi", "嗨", "哈喽", "哈啰", "早", "早上好", "早安", "上午好",
               "中午好", "下午好", "晚上好", "晚安", "在吗", "在不在", "在么", "在嘛", "有人吗", "喂", "大家好", "你们好",
               "嗨嗨", "hey", "哈罗", "您好呀", "老师好", "在", "你在吗", "新年好", "周一好", "请问", "打扰了", "打扰一下"),
        "en": ("hello", "hi", "hey", "good morning", "good afternoon", "good evening", "morning", "anyone there"),
    },
    "thanks": {
        "zh": ("谢谢", "多谢", "感谢", "谢了", "谢谢你", "谢谢啦", "谢啦", "辛苦了", "辛苦", "麻烦了", "感谢感谢",
               "谢谢谢谢", "太感谢了", "非常感谢", "谢谢老师", "3q", "thx"),
        "en": ("thanks", "thank you", "thx", "ty", "cheers", "many thanks"),
    },
    "ack": {
        "zh": ("好的", "好", "收到", "好的收到", "收到了", "嗯", "嗯嗯", "恩", "哦", "噢", "哦哦", "ok", "okay", "知道了",
               "明白", "明白了", "了解", "了解了", "行", "可以", "没问题", "好嘞", "好滴", "好哒", "妥", "好吧", "对",
               "是的", "懂了", "清楚了", "get", "好的好的", "收到收到", "好的谢谢", "收到谢谢", "👌", "👍", "ojbk",
               "行吧", "嗯呢", "哈哈", "哈哈哈", "呵呵", "666", "厉害", "棒", "赞",
               # A bare yes or no with no question open answers nothing; it is not an action either.
               "是", "对的", "不是", "不", "否", "不用", "不用了", "不对"),
        "en": ("ok", "okay", "got it", "sure", "fine", "cool", "noted", "great", "nice", "yes", "yep", "alright"),
    },
    "farewell": {
        "zh": ("再见", "拜拜", "下次见", "回头见", "先这样", "88", "拜"),
        "en": ("bye", "goodbye", "see you", "later"),
    },
}

# A message that asks rather than tells: these at the end or the start make it a question.
QUESTION_ENDS: dict[str, tuple[str, ...]] = {
    "zh": ("?", "吗", "呢", "么", "嘛", "不"),
    "en": ("?",),
}
# Question words anywhere in a short message (今天天气怎么样, 这个是干嘛的).
QUESTION_INSIDE: dict[str, tuple[str, ...]] = {
    "zh": ("怎么样", "怎么", "干嘛", "干什么", "什么", "为什么", "为啥", "如何", "是不是", "能不能", "可不可以",
           "有没有", "吗", "咋"),
    "en": (),
}
QUESTION_STARTS: dict[str, tuple[str, ...]] = {
    "zh": ("什么", "怎么", "为什么", "为啥", "如何", "哪", "谁", "能不能", "可不可以", "是不是", "有没有", "请问",
           "这是", "你是", "咋", "干嘛", "多少", "几"),
    "en": ("what", "how", "why", "who", "where", "when", "can you", "is this", "are you", "do you"),
}


def command_words(command: str) -> tuple[str, ...]:
    """Every locale's words for a whole-message command."""
    return tuple(w for words in COMMAND_WORDS[command].values() for w in words)
