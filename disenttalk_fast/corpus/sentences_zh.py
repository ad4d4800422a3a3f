"""Mandarin sentences (Chinese characters) for the synthetic corpus, built compositionally.

Word lists cover the retroflex initials (zh ch sh r), the palatals (j q x), the rounded finals
(u, o, ü) and numbers with measure words. `sentences(count, seed)` is deterministic.
"""

from __future__ import annotations

import random

from disenttalk_fast.corpus.templates import distinct_sentences

SUBJECTS = ("我", "你", "他", "她", "我们", "他们", "老师", "学生", "妈妈", "爸爸", "小明",
            "我的朋友", "张先生", "李老师", "哥哥", "妹妹", "医生", "司机", "孩子们", "王小姐")
TIMES = ("今天", "明天", "昨天", "早上", "晚上", "每天", "星期一", "周末", "下午", "去年",
         "现在", "春节的时候")
PLACES = ("在学校", "在家里", "在公园", "在图书馆", "在商店", "在火车站", "在餐厅", "在北京",
          "在上海", "在河边", "在办公室", "在超市")
DESTINATIONS = ("学校", "公园", "图书馆", "医院", "火车站", "飞机场", "书店", "朋友家",
                "长城", "动物园", "上海", "广州")
# (verb, objects that go with it)
VERB_OBJECTS = (
    ("喜欢", ("音乐", "足球", "中国菜", "绿茶", "唱歌", "游泳", "读书")),
    ("吃", ("苹果", "面条", "米饭", "饺子", "水果", "鱼", "包子")),
    ("喝", ("热水", "咖啡", "牛奶", "果汁", "绿茶", "啤酒")),
    ("看", ("电影", "报纸", "电视", "小说", "比赛", "照片")),
    ("学习", ("中文", "数学", "历史", "音乐", "书法", "日语")),
    ("买", ("衣服", "鞋子", "雨伞", "手机", "桌子", "自行车")),
    ("写", ("汉字", "日记", "作业", "信", "文章", "诗")),
    ("听", ("音乐", "广播", "故事", "新闻", "歌")),
    ("打", ("电话", "篮球", "太极拳", "扫")),
)
# (noun, measure word)
COUNTABLE = (("书", "本"), ("苹果", "个"), ("朋友", "个"), ("茶", "杯"), ("桌子", "张"),
             ("照片", "张"), ("猫", "只"), ("鱼", "条"), ("车", "辆"), ("衣服", "件"),
             ("铅笔", "支"), ("房子", "座"))
ADJECTIVES = ("好", "大", "小", "漂亮", "便宜", "贵", "热", "冷", "有意思", "舒服", "难",
              "容易", "快", "重要", "干净", "热闹")
DIGITS = "零一二三四五六七八九"


def number_chars(n: int) -> str:
    """1..99 in characters (二十五); 2 before a measure word is 两."""
    if not 1 <= n < 100:
        raise ValueError(f"number_chars handles 1..99, got {n}")
    tens, ones = divmod(n, 10)
    if tens == 0:
        return DIGITS[ones]
    head = "十" if tens == 1 else DIGITS[tens] + "十"
    return head + ("" if ones == 0 else DIGITS[ones])


def _count(n: int) -> str:
    return "两" if n == 2 else number_chars(n)


def _verb_object(r: random.Random) -> str:
    verb, objects = r.choice(VERB_OBJECTS)
    return verb + r.choice(objects)


TEMPLATES = (
    lambda r: f"{r.choice(TIMES)}{r.choice(SUBJECTS)}{r.choice(PLACES)}{_verb_object(r)}。",
    lambda r: f"{r.choice(SUBJECTS)}{r.choice(TIMES)}想去{r.choice(DESTINATIONS)}。",
    lambda r: (lambda n, m: f"{r.choice(SUBJECTS)}有{_count(r.randrange(2, 100))}{m}{n}。")(
        *r.choice(COUNTABLE)),
    lambda r: f"{r.choice(SUBJECTS)}觉得这个{r.choice(COUNTABLE)[0]}很{r.choice(ADJECTIVES)}。",
    lambda r: f"{r.choice(SUBJECTS)}{r.choice(TIMES)}{_verb_object(r)}吗？",
    lambda r: f"你什么时候去{r.choice(DESTINATIONS)}？",
    lambda r: f"{r.choice(SUBJECTS)}说{r.choice(TIMES)}的天气非常{r.choice(('好', '热', '冷', '舒服'))}。",
    lambda r: f"这{(c := r.choice(COUNTABLE))[1]}{c[0]}要{number_chars(r.randrange(1, 100))}块钱。",
    lambda r: f"我们{r.choice(TIMES)}{number_chars(r.randrange(1, 13))}点在{r.choice(DESTINATIONS)}见面吧。",
    lambda r: f"{r.choice(SUBJECTS)}一边{_verb_object(r)}，一边{_verb_object(r)}。",
    lambda r: f"为什么{r.choice(SUBJECTS)}不{_verb_object(r)}呢？",
    lambda r: f"请你把{r.choice(COUNTABLE)[0]}放在{r.choice(('桌子上', '书包里', '门口', '车里', '床下面'))}。",
    lambda r: f"{r.choice(('哦', '啊', '哎呀', '好的', '对'))}，{r.choice(SUBJECTS)}已经"
              f"{_verb_object(r)}了。",
)



def sentences(count: int = 400, seed: int = 0) -> list[str]:
    """`count` distinct sentences, deterministic for a given seed."""
    return distinct_sentences(TEMPLATES, count, f"zh:{seed}")
