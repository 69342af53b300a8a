// Console texts in Arabic (default) and English. Keys are dotted; {name} placeholders.
const ar = {
  'app.name': 'عون', 'app.subtitle': 'لوحة الموظفين', 'app.skip': 'تخطَّ إلى المحتوى',
  'lang.switch': 'English', 'lang.switch_label': 'Switch to English',
  'nav.inbox': 'المحادثات', 'nav.cases': 'الطلبات', 'nav.dashboard': 'رضا المستفيدين', 'nav.staff': 'الموظفون',
  'nav.signout': 'تسجيل الخروج', 'nav.password': 'كلمة المرور',
  'password.title': 'تغيير كلمة المرور', 'password.current': 'كلمة المرور الحالية', 'password.new': 'كلمة المرور الجديدة',
  'password.again': 'أعيدوا كتابة الجديدة', 'password.save': 'حفظ', 'password.hint': 'ثمانية أحرف على الأقل. تنتهي جلساتكم الأخرى، وتبقى هذه.',
  'password.mismatch': 'كلمتا المرور الجديدتان غير متطابقتين.', 'password.wrong': 'كلمة المرور الحالية غير صحيحة.', 'password.changed': 'تغيّرت كلمة المرور.', 'nav.shortcuts': 'اختصارات لوحة المفاتيح', 'nav.main': 'التنقل الرئيسي',
  'login.title': 'تسجيل الدخول', 'login.intro': 'لوحة موظفي علاقات المستفيدين',
  'login.username': 'اسم المستخدم', 'login.password': 'كلمة المرور', 'login.submit': 'دخول', 'login.busy': 'جارٍ الدخول…',
  'login.wrong': 'اسم المستخدم أو كلمة المرور غير صحيحة.',
  'login.locked': 'أُوقف الدخول مؤقتًا بعد محاولات خاطئة متكررة. حاولوا بعد قليل.',
  'login.expired': 'انتهت الجلسة. فضلًا سجّلوا الدخول مرة أخرى.',
  'login.signed_out': 'تم تسجيل الخروج.', 'login.failed': 'تعذّر الاتصال بالخادم. حاولوا مرة أخرى.',
  'banner.reconnecting': 'انقطع الاتصال المباشر. جارٍ إعادة الاتصال…', 'banner.reconnected': 'عاد الاتصال المباشر.',
  'banner.retry_in': 'المحاولة التالية خلال {s} ث',
  'banner.credentials': '{channel} يرفض الإرسال من حساب الجمعية منذ {time} ({error}): رمز الوصول أو صلاحية أو دفع أو حظر. الردود محفوظة ولن تضيع، وتُرسل حين يُصلح المسؤول ذلك.',
  'queue.waiting': 'بالانتظار', 'queue.mine': 'محادثاتي', 'queue.all': 'الكل', 'queue.label': 'قوائم المحادثات',
  'queue.empty.waiting': 'لا أحد بالانتظار الآن.', 'queue.empty.mine': 'لا محادثات لديكم الآن.', 'queue.empty.all': 'لا محادثات.',
  'queue.loading': 'جارٍ التحميل…', 'queue.next': 'التالي في الانتظار',
  'reason.requested': 'طلب موظفًا', 'reason.misunderstood': 'لم يفهمه البوت', 'reason.danger': 'خطر',
  'reason.late_message': 'رسالة وصلت متأخرة',
  'reason.holder_disabled': 'أُعيدت بعد تعطيل حساب الموظف',
  'priority.danger': 'أولوية: خطر',
  'mode.bot': 'مع البوت', 'mode.waiting': 'بالانتظار', 'mode.staff': 'مع موظف', 'mode.resolved': 'مُغلقة',
  'channel.whatsapp': 'واتساب', 'channel.telegram': 'تيليجرام', 'channel.sms': 'رسائل نصية', 'channel.webchat': 'دردشة الموقع',
  'conv.none': 'اختاروا محادثة من القائمة.', 'conv.back': 'رجوع إلى القائمة',
  'conv.takeover': 'استلام المحادثة', 'conv.override': 'استلام من زميل', 'conv.release': 'إعادتها للبوت', 'conv.resolve': 'إنهاء المحادثة',
  'conv.held_by': 'يتولاها: {name}', 'conv.held_by_you': 'أنتم تتولون هذه المحادثة', 'conv.waiting_since': 'بالانتظار منذ {t}',
  'conv.window_open': 'نافذة واتساب (٢٤ ساعة) مفتوحة', 'conv.window_closed': 'نافذة واتساب (٢٤ ساعة) مغلقة: الرد يحتاج قالبًا معتمدًا.',
  'conv.transcript': 'نص المحادثة', 'conv.confirm_resolve': 'إنهاء المحادثة؟ سيُرسَل للمستفيد استبيان الرضا.',
  'conv.confirm_override': 'هذه المحادثة لدى زميل. استلامها منه؟',
  'conv.taken': 'استلمتم المحادثة.', 'conv.released': 'أُعيدت المحادثة للبوت.', 'conv.resolved': 'أُنهيت المحادثة.',
  'conv.conflict': 'تعذّر ذلك: {msg}',
  'sender.beneficiary': 'المستفيد', 'sender.bot': 'البوت', 'sender.staff': 'موظف', 'sender.system': 'النظام',
  'status.pending': 'قيد الإرسال', 'status.sent': 'أُرسلت', 'status.delivered': 'وصلت', 'status.read': 'قُرئت', 'status.failed': 'فشل الإرسال', 'status.dead': 'تعذّر الإرسال نهائيًا',
  'media.image': 'صورة', 'media.document': 'مستند', 'media.audio': 'تسجيل صوتي', 'media.video': 'فيديو', 'media.other': 'مرفق',
  'media.download': 'تنزيل', 'media.failed': 'تعذر تنزيل الملف: {msg}',
  'kind.location': 'موقع', 'kind.contact': 'جهة اتصال', 'kind.unsupported': 'رسالة من نوع غير مدعوم',
  'raw.my_chat_member:kicked': 'حظر المستفيد البوت في تيليجرام: لن تصله رسائل حتى يكتب من جديد',
  'raw.my_chat_member:member': 'أعاد المستفيد تشغيل البوت في تيليجرام',
  'msg.written_from': 'وصلت متأخرة من {from}، وهو رقم لم يعد يستخدمه هذا المستفيد',
  'msg.written_at': 'كُتبت في {time} ووصلت متأخرة',
  'msg.forwarded': 'رسالة مُعاد توجيهها: كتبها شخص آخر أولًا',
  'msg.forwarded_from': 'رسالة مُعاد توجيهها من {from}',
  'msg.forwarded_at': 'رسالة مُعاد توجيهها، كُتبت أولًا في {time}',
  'msg.forwarded_from_at': 'رسالة مُعاد توجيهها من {from}، كُتبت أولًا في {time}',
  'location.live': 'موقع مباشر', 'location.live_past': 'موقع كان مباشرًا', 'location.moved': 'آخر تحديث {time}', 'location.until': 'يُشارك حتى {time}', 'location.ended': 'انتهت المشاركة {time}',
  'reply.label': 'ردّكم', 'reply.placeholder': 'اكتبوا ردّكم… (Ctrl+Enter للإرسال)', 'reply.send': 'إرسال',
  'reply.canned': 'ردود جاهزة', 'reply.canned_search': 'ابحث في الردود الجاهزة', 'reply.canned_empty': 'لا ردود جاهزة.',
  'reply.need_takeover': 'استلموا المحادثة لتتمكنوا من الرد.', 'reply.sent': 'أُرسل الرد.',
  'reply.template': 'إرسال القالب المعتمد «{name}»', 'reply.template_sent': 'أُرسل القالب.',
  'case.panel': 'الطلب', 'case.none': 'لا يوجد طلب مرتبط بهذه المحادثة.', 'case.fields': 'البيانات المجمعة',
  'case.reference': 'رقم الطلب', 'case.full_name': 'الاسم', 'case.national_id': 'رقم الهوية', 'case.mobile': 'الجوال', 'case.city': 'المدينة',
  'case.service_type': 'نوع المساعدة', 'case.description': 'الوصف', 'case.channel': 'القناة', 'case.created_at': 'تاريخ التقديم',
  'case.step': 'المرحلة', 'case.verification': 'طريقة التحقق', 'case.appointment': 'الموعد', 'case.documents': 'المستندات', 'case.no_documents': 'لا مستندات بعد.',
  'case.history': 'السجل', 'case.no_history': 'لا تغييرات بعد.', 'case.move_to': 'نقل إلى: {step}', 'case.next_steps': 'الخطوة التالية',
  'case.note': 'ملاحظة (تُحفظ في السجل)', 'case.no_transitions': 'لا خطوات متاحة من هذه المرحلة.',
  'case.request_docs': 'طلب مستندات من المستفيد', 'case.docs_requested': 'طُلبت المستندات عبر البوت.',
  'case.moved': 'نُقل الطلب إلى «{step}».', 'case.by': '{name}', 'case.open': 'فتح الطلب', 'case.list': 'قائمة الطلبات', 'case.filter': 'تصفية حسب المرحلة',
  'case.all_steps': 'كل المراحل', 'case.empty': 'لا طلبات.', 'case.conversation': 'فتح المحادثة', 'case.close_panel': 'إغلاق',
  'case.need_method': 'اختاروا طريقة التحقق.',
  'step.submitted': 'مُقدَّم', 'step.collecting_info': 'جمع المعلومات', 'step.evaluating': 'التقييم', 'step.approved': 'مقبول', 'step.rejected': 'مرفوض', 'step.closed': 'مُغلق',
  'method.document_check': 'فحص إداري للمستندات', 'method.interview': 'مقابلة شخصية', 'method.field_visit': 'زيارة ميدانية', 'method.none': '—',
  'service.legal': 'استشارة قانونية', 'service.psychological': 'دعم نفسي', 'service.social': 'دعم اجتماعي', 'service.financial': 'مساعدة مالية', 'service.other': 'أخرى',
  'dash.title': 'رضا المستفيدين', 'dash.intro': 'أرقام مجمعة لتحسين الخدمة، لا لمحاسبة أحد. لا تظهر إجابات أي مستفيد بعينه.',
  'dash.from': 'من', 'dash.to': 'إلى', 'dash.apply': 'عرض',
  'dash.invited': 'دُعي للتقييم', 'dash.responses': 'قيّموا', 'dash.rate': 'نسبة الاستجابة', 'dash.overall': 'التقييم العام', 'dash.speed': 'السرعة', 'dash.courtesy': 'تعامل الموظفين',
  'dash.min_group': 'ما قلّ عن {n} تقييمات يظهر عدده فقط، حتى لا تُعرف إجابة مستفيد بعينه.',
  'dash.distribution': 'توزيع التقييمات (١–٥)', 'dash.trend': 'التقييم العام عبر الزمن', 'dash.by_channel': 'حسب القناة', 'dash.by_service': 'حسب نوع الخدمة',
  'dash.by_staff': 'حسب الموظف', 'dash.by_staff_note': 'تظهر فقط لمن لديه عدد كافٍ من التقييمات، وللمشرفين فقط.',
  'dash.cases': 'الطلبات حسب المرحلة', 'dash.median_first': 'متوسط (وسيط) زمن أول رد بشري', 'dash.no_data': 'لا بيانات في هذه الفترة.',
  'dash.score': 'الدرجة', 'dash.count': 'العدد', 'dash.period': 'الفترة', 'dash.table': 'عرض الأرقام كجدول', 'dash.average': 'المتوسط', 'dash.name': 'الاسم',
  'staff.title': 'الموظفون', 'staff.add': 'إضافة موظف', 'staff.username': 'اسم المستخدم', 'staff.display_name': 'الاسم الظاهر', 'staff.password': 'كلمة المرور المؤقتة',
  'staff.role': 'الدور', 'staff.create': 'إضافة', 'staff.created': 'أُضيف الحساب.', 'staff.forbidden': 'هذه الصفحة للمديرين فقط.',
  'staff.password_hint': '١٢ حرفًا على الأقل.',
  'role.agent': 'موظف', 'role.supervisor': 'مشرف', 'role.admin': 'مدير',
  'time.just_now': 'الآن', 'time.min': 'قبل {n} د', 'time.hour': 'قبل {n} س', 'time.day': 'قبل {n} يوم',
  'common.loading': 'جارٍ التحميل…', 'common.error': 'حدث خطأ: {msg}', 'common.cancel': 'إلغاء', 'common.confirm': 'تأكيد', 'common.close': 'إغلاق',
  'common.minutes': '{n} دقيقة', 'common.seconds': '{n} ثانية', 'common.hours': '{n} ساعة', 'common.none': '—',
  'shortcuts.title': 'اختصارات لوحة المفاتيح',
  'shortcuts.tabs': 'قوائم: بالانتظار / محادثاتي / الكل', 'shortcuts.next': 'فتح أول محادثة بالانتظار', 'shortcuts.send': 'إرسال الرد',
  'shortcuts.list': 'التنقل في قائمة المحادثات', 'shortcuts.reply': 'الانتقال إلى خانة الرد', 'shortcuts.help': 'عرض هذه القائمة', 'shortcuts.esc': 'إغلاق النوافذ',
};

const en = {
  'app.name': 'Aoun', 'app.subtitle': 'Staff console', 'app.skip': 'Skip to content',
  'lang.switch': 'العربية', 'lang.switch_label': 'التبديل إلى العربية',
  'nav.inbox': 'Conversations', 'nav.cases': 'Cases', 'nav.dashboard': 'Satisfaction', 'nav.staff': 'Staff',
  'nav.signout': 'Sign out', 'nav.password': 'Password',
  'password.title': 'Change password', 'password.current': 'Current password', 'password.new': 'New password',
  'password.again': 'New password again', 'password.save': 'Save', 'password.hint': 'At least eight characters. Your other sessions end; this one stays.',
  'password.mismatch': 'The two new passwords differ.', 'password.wrong': 'The current password is wrong.', 'password.changed': 'Password changed.', 'nav.shortcuts': 'Keyboard shortcuts', 'nav.main': 'Main navigation',
  'login.title': 'Sign in', 'login.intro': 'Beneficiary relations staff console',
  'login.username': 'Username', 'login.password': 'Password', 'login.submit': 'Sign in', 'login.busy': 'Signing in…',
  'login.wrong': 'Wrong username or password.',
  'login.locked': 'Sign-in is paused after repeated wrong attempts. Try again shortly.',
  'login.expired': 'Your session has expired. Please sign in again.',
  'login.signed_out': 'You have signed out.', 'login.failed': 'Could not reach the server. Try again.',
  'banner.reconnecting': 'Live connection lost. Reconnecting…', 'banner.reconnected': 'Live connection restored.',
  'banner.retry_in': 'next attempt in {s}s',
  'banner.credentials': '{channel} refuses to send for the association\'s account since {time} ({error}): the token, a permission, a payment or a block. Replies are kept, not lost, and go out once an administrator fixes it.',
  'queue.waiting': 'Waiting', 'queue.mine': 'Mine', 'queue.all': 'All', 'queue.label': 'Conversation queues',
  'queue.empty.waiting': 'Nobody is waiting.', 'queue.empty.mine': 'You hold no conversations.', 'queue.empty.all': 'No conversations.',
  'queue.loading': 'Loading…', 'queue.next': 'Next waiting',
  'reason.requested': 'Asked for staff', 'reason.misunderstood': 'Bot did not understand', 'reason.danger': 'Danger',
  'reason.late_message': 'A message that came late',
  'reason.holder_disabled': 'Back: its staff member was disabled',
  'priority.danger': 'Priority: danger',
  'mode.bot': 'With bot', 'mode.waiting': 'Waiting', 'mode.staff': 'With staff', 'mode.resolved': 'Resolved',
  'channel.whatsapp': 'WhatsApp', 'channel.telegram': 'Telegram', 'channel.sms': 'SMS', 'channel.webchat': 'Web chat',
  'conv.none': 'Pick a conversation from the list.', 'conv.back': 'Back to the list',
  'conv.takeover': 'Take over', 'conv.override': 'Take over from colleague', 'conv.release': 'Release to bot', 'conv.resolve': 'Resolve',
  'conv.held_by': 'Held by: {name}', 'conv.held_by_you': 'You hold this conversation', 'conv.waiting_since': 'Waiting since {t}',
  'conv.window_open': 'WhatsApp 24-hour window open', 'conv.window_closed': 'WhatsApp 24-hour window closed: a reply needs an approved template.',
  'conv.transcript': 'Transcript', 'conv.confirm_resolve': 'Resolve this conversation? The beneficiary will get the satisfaction survey.',
  'conv.confirm_override': 'A colleague holds this conversation. Take it over?',
  'conv.taken': 'You took over the conversation.', 'conv.released': 'Released to the bot.', 'conv.resolved': 'Conversation resolved.',
  'conv.conflict': 'Not possible: {msg}',
  'sender.beneficiary': 'Beneficiary', 'sender.bot': 'Bot', 'sender.staff': 'Staff', 'sender.system': 'System',
  'status.pending': 'Sending', 'status.sent': 'Sent', 'status.delivered': 'Delivered', 'status.read': 'Read', 'status.failed': 'Failed', 'status.dead': 'Gave up',
  'media.image': 'Image', 'media.document': 'Document', 'media.audio': 'Voice note', 'media.video': 'Video', 'media.other': 'Attachment',
  'media.download': 'Download', 'media.failed': 'Could not download the file: {msg}',
  'kind.location': 'Location', 'kind.contact': 'Contact', 'kind.unsupported': 'Unsupported message type',
  'raw.my_chat_member:kicked': 'The beneficiary blocked the bot on Telegram: nothing reaches them until they write again',
  'raw.my_chat_member:member': 'The beneficiary restarted the bot on Telegram',
  'msg.written_from': 'Delivered late from {from}, a number this beneficiary no longer uses',
  'msg.written_at': 'Written {time}, delivered late',
  'msg.forwarded': 'Forwarded: someone else wrote it first',
  'msg.forwarded_from': 'Forwarded from {from}',
  'msg.forwarded_at': 'Forwarded; first written {time}',
  'msg.forwarded_from_at': 'Forwarded from {from}; first written {time}',
  'location.live': 'Live location', 'location.live_past': 'Was a live location', 'location.moved': 'last moved {time}', 'location.until': 'shared until {time}', 'location.ended': 'sharing ended {time}',
  'reply.label': 'Your reply', 'reply.placeholder': 'Write your reply… (Ctrl+Enter to send)', 'reply.send': 'Send',
  'reply.canned': 'Canned answers', 'reply.canned_search': 'Search canned answers', 'reply.canned_empty': 'No canned answers.',
  'reply.need_takeover': 'Take over the conversation to reply.', 'reply.sent': 'Reply sent.',
  'reply.template': 'Send approved template "{name}"', 'reply.template_sent': 'Template sent.',
  'case.panel': 'Case', 'case.none': 'No case is linked to this conversation.', 'case.fields': 'Collected information',
  'case.reference': 'Reference', 'case.full_name': 'Name', 'case.national_id': 'National ID', 'case.mobile': 'Mobile', 'case.city': 'City',
  'case.service_type': 'Service type', 'case.description': 'Description', 'case.channel': 'Channel', 'case.created_at': 'Submitted',
  'case.step': 'Step', 'case.verification': 'Verification', 'case.appointment': 'Appointment', 'case.documents': 'Documents', 'case.no_documents': 'No documents yet.',
  'case.history': 'History', 'case.no_history': 'No changes yet.', 'case.move_to': 'Move to: {step}', 'case.next_steps': 'Next step',
  'case.note': 'Note (kept in the history)', 'case.no_transitions': 'No further steps from here.',
  'case.request_docs': 'Ask the beneficiary for documents', 'case.docs_requested': 'Documents requested through the bot.',
  'case.moved': 'Case moved to "{step}".', 'case.by': '{name}', 'case.open': 'Open case', 'case.list': 'Cases', 'case.filter': 'Filter by step',
  'case.all_steps': 'All steps', 'case.empty': 'No cases.', 'case.conversation': 'Open conversation', 'case.close_panel': 'Close',
  'case.need_method': 'Choose a verification method.',
  'step.submitted': 'Submitted', 'step.collecting_info': 'Collecting information', 'step.evaluating': 'Evaluating', 'step.approved': 'Approved', 'step.rejected': 'Rejected', 'step.closed': 'Closed',
  'method.document_check': 'Document check', 'method.interview': 'Personal interview', 'method.field_visit': 'Field visit', 'method.none': '—',
  'service.legal': 'Legal consultation', 'service.psychological': 'Psychological support', 'service.social': 'Social support', 'service.financial': 'Financial aid', 'service.other': 'Other',
  'dash.title': 'Beneficiary satisfaction', 'dash.intro': 'Aggregate figures to improve the service, never to blame anyone. No individual beneficiary\'s answers are shown.',
  'dash.from': 'From', 'dash.to': 'To', 'dash.apply': 'Show',
  'dash.invited': 'Invited', 'dash.responses': 'Responses', 'dash.rate': 'Response rate', 'dash.overall': 'Overall', 'dash.speed': 'Speed', 'dash.courtesy': 'Staff courtesy',
  'dash.min_group': 'Groups with fewer than {n} answers show their count only, so that no single beneficiary\'s answers can be read.',
  'dash.distribution': 'Distribution of ratings (1–5)', 'dash.trend': 'Overall rating over time', 'dash.by_channel': 'By channel', 'dash.by_service': 'By service type',
  'dash.by_staff': 'By staff member', 'dash.by_staff_note': 'Shown only above a minimum number of responses, and only to supervisors.',
  'dash.cases': 'Cases by step', 'dash.median_first': 'Median time to first human response', 'dash.no_data': 'No data in this period.',
  'dash.score': 'Score', 'dash.count': 'Count', 'dash.period': 'Period', 'dash.table': 'Show the figures as a table', 'dash.average': 'Average', 'dash.name': 'Name',
  'staff.title': 'Staff', 'staff.add': 'Add a staff member', 'staff.username': 'Username', 'staff.display_name': 'Display name', 'staff.password': 'Temporary password',
  'staff.role': 'Role', 'staff.create': 'Add', 'staff.created': 'Account created.', 'staff.forbidden': 'This page is for admins only.',
  'staff.password_hint': 'At least 12 characters.',
  'role.agent': 'Agent', 'role.supervisor': 'Supervisor', 'role.admin': 'Admin',
  'time.just_now': 'now', 'time.min': '{n} min ago', 'time.hour': '{n} h ago', 'time.day': '{n} d ago',
  'common.loading': 'Loading…', 'common.error': 'Something went wrong: {msg}', 'common.cancel': 'Cancel', 'common.confirm': 'Confirm', 'common.close': 'Close',
  'common.minutes': '{n} min', 'common.seconds': '{n} s', 'common.hours': '{n} h', 'common.none': '—',
  'shortcuts.title': 'Keyboard shortcuts',
  'shortcuts.tabs': 'Queues: waiting / mine / all', 'shortcuts.next': 'Open the head of the waiting queue', 'shortcuts.send': 'Send the reply',
  'shortcuts.list': 'Move through the conversation list', 'shortcuts.reply': 'Jump to the reply box', 'shortcuts.help': 'Show this list', 'shortcuts.esc': 'Close dialogs',
};

const dicts = { ar, en };
let lang = localStorage.getItem('aoun.lang') === 'en' ? 'en' : 'ar';

export function getLang() { return lang; }
export function setLang(l) {
  lang = l === 'en' ? 'en' : 'ar';
  localStorage.setItem('aoun.lang', lang);
  applyLang();
}
export function applyLang() {
  document.documentElement.lang = lang;
  document.documentElement.dir = lang === 'ar' ? 'rtl' : 'ltr';
}
export function t(key, vars) {
  let s = dicts[lang][key] ?? dicts.ar[key] ?? key;
  if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (vars[k] ?? m));
  return s;
}
export function tOr(key, fallback) { return dicts[lang][key] ?? fallback; }

// Gregorian calendar, Latin digits in both languages (references, phone numbers and IDs
// are written with ASCII digits everywhere in the system).
const locale = () => (lang === 'ar' ? 'ar-SA-u-ca-gregory-nu-latn' : 'en-GB');
export function fmtDateTime(unixOrIso) {
  const d = typeof unixOrIso === 'number' ? new Date(unixOrIso * 1000) : new Date(unixOrIso);
  if (isNaN(d)) return '—';
  return new Intl.DateTimeFormat(locale(), { dateStyle: 'medium', timeStyle: 'short' }).format(d);
}
export function fmtTime(unix) {
  const d = new Date(unix * 1000);
  if (isNaN(d)) return '';
  const today = new Date();
  const sameDay = d.toDateString() === today.toDateString();
  return new Intl.DateTimeFormat(locale(), sameDay ? { timeStyle: 'short' } : { dateStyle: 'short', timeStyle: 'short' }).format(d);
}
export function fmtNumber(n, digits = 0) {
  if (n === null || n === undefined || isNaN(n)) return '—';
  return new Intl.NumberFormat(locale(), { maximumFractionDigits: digits, minimumFractionDigits: digits }).format(n);
}
export function fmtAgo(unix) {
  if (!unix) return '';
  const s = Math.max(0, Date.now() / 1000 - toUnix(unix));
  if (s < 60) return t('time.just_now');
  if (s < 3600) return t('time.min', { n: Math.floor(s / 60) });
  if (s < 86400) return t('time.hour', { n: Math.floor(s / 3600) });
  return t('time.day', { n: Math.floor(s / 86400) });
}
export function fmtDuration(sec) {
  if (sec === null || sec === undefined || isNaN(sec)) return '—';
  if (sec < 60) return t('common.seconds', { n: Math.round(sec) });
  if (sec < 3600) return t('common.minutes', { n: Math.round(sec / 60) });
  return t('common.hours', { n: fmtNumber(sec / 3600, 1) });
}
export function toUnix(v) {
  if (typeof v === 'number') return v;
  const d = Date.parse(v);
  return isNaN(d) ? 0 : d / 1000;
}
