package report

import (
	"fmt"
	"strings"

	"github.com/ferry-migrate/ferry/i18n"
)

// labels are the report's own words (headers, titles) in English and
// Chinese; the domain texts (findings, wave names) come from i18n.
var labels = map[string][2]string{
	"title":                        {"Migration assessment and plan", "迁移评估与计划"},
	"tenant":                       {"Client", "客户"},
	"generated":                    {"Generated", "生成时间"},
	"target":                       {"Target cloud", "目标云"},
	"region":                       {"Region", "地域"},
	"hosts":                        {"Hosts", "主机"},
	"assessed":                     {"Assessed hosts", "已评估主机"},
	"notAssessed":                  {"Not assessed", "未评估"},
	"ready":                        {"Ready", "就绪"},
	"ready_with_actions":           {"Ready with actions", "需处理后就绪"},
	"not_ready":                    {"Not ready", "未就绪"},
	"unknown":                      {"Unknown", "未知"},
	"costAsIs":                     {"Monthly compute, as-is", "每月计算费用（按现有配置）"},
	"costRightSized":               {"Monthly compute, right-sized", "每月计算费用（优化规格）"},
	"storageMonthly":               {"Monthly storage", "每月存储费用"},
	"savings":                      {"Saving from right-sizing", "优化规格节省"},
	"usedData":                     {"Data to move", "待迁移数据"},
	"transfer":                     {"Transfer over the link", "链路传输时间"},
	"offlineSeeding":               {"Offline seeding", "离线导入种子"},
	"prices":                       {"Prices", "价格"},
	"priceDisclaimer":              {"Linux list prices without discounts, Windows licences or bandwidth; taken %s (%s). Confirm with the provider before quoting.", "Linux 目录价，不含折扣、Windows 许可和带宽；取价日期 %s（%s）。报价前请向云厂商确认。"},
	"notPriced":                    {"%s has no price list: flavors and prices are site-specific; sizes only.", "%s 没有价目表：规格和价格因站点而异，仅给出所需规格。"},
	"plan":                         {"Plan", "计划"},
	"noPlan":                       {"No plan yet", "尚无计划"},
	"waves":                        {"Waves", "批次"},
	"placed":                       {"Hosts placed", "已编排主机"},
	"crossing":                     {"Dependency weight crossing waves", "跨批次依赖权重"},
	"start":                        {"Start", "开始"},
	"end":                          {"End", "结束"},
	"sheet.summary":                {"Summary", "Summary"},
	"name":                         {"Host", "主机"},
	"fqdn":                         {"FQDN", "FQDN"},
	"os":                           {"Operating system", "操作系统"},
	"environment":                  {"Environment", "环境"},
	"criticality":                  {"Criticality", "重要性"},
	"owner":                        {"Owner", "负责人"},
	"application":                  {"Application", "应用"},
	"cpus":                         {"vCPUs", "vCPU"},
	"memoryGiB":                    {"Memory (GiB)", "内存（GiB）"},
	"diskGiB":                      {"Disk provisioned (GiB)", "磁盘分配（GiB）"},
	"usedGiB":                      {"Disk used (GiB)", "磁盘已用（GiB）"},
	"ips":                          {"IP addresses", "IP 地址"},
	"cpuP95":                       {"CPU p95 %", "CPU p95 %"},
	"memP95":                       {"Memory p95 %", "内存 p95 %"},
	"readiness":                    {"Readiness", "就绪情况"},
	"reasons":                      {"Reasons", "原因"},
	"actions":                      {"Actions", "需处理事项"},
	"missing":                      {"Missing data", "缺少的数据"},
	"needVcpus":                    {"Needed vCPUs", "所需 vCPU"},
	"needMem":                      {"Needed memory (GiB)", "所需内存（GiB）"},
	"instanceAsIs":                 {"Instance as-is", "现有配置规格"},
	"instanceRight":                {"Instance right-sized", "优化规格"},
	"monthlyAsIs":                  {"Monthly as-is", "每月（现有配置）"},
	"monthlyRight":                 {"Monthly right-sized", "每月（优化规格）"},
	"notes":                        {"Notes", "说明"},
	"transferHours":                {"Transfer (hours)", "传输时间（小时）"},
	"src":                          {"Source", "源"},
	"dst":                          {"Destination", "目标"},
	"port":                         {"Port", "端口"},
	"protocol":                     {"Protocol", "协议"},
	"process":                      {"Process", "进程"},
	"count":                        {"Connections", "连接数"},
	"bytes":                        {"Bytes", "字节数"},
	"crossesWaves":                 {"Crosses waves", "跨批次"},
	"group":                        {"Move group", "迁移组"},
	"wave":                         {"Wave", "批次"},
	"members":                      {"Members (first 20)", "成员（前 20 个）"},
	"data":                         {"Data (GiB)", "数据（GiB）"},
	"wire":                         {"On the wire (GiB)", "传输量（GiB）"},
	"replication":                  {"Replication (hours)", "复制时间（小时）"},
	"cutover":                      {"Cutover", "切换"},
	"cutoverEnd":                   {"Cutover ends", "切换结束"},
	"status":                       {"Status", "状态"},
	"reason":                       {"Why this wave", "编排原因"},
	"manual":                       {"Moved by hand", "手动调整"},
	"downtime":                     {"Downtime (minutes)", "停机时间（分钟）"},
	"yes":                          {"yes", "是"},
	"no":                           {"no", "否"},
	"businessCase":                 {"Business case", "业务论证"},
	"onPremises":                   {"On premises", "本地数据中心"},
	"cloudAsIs":                    {"Cloud as-is", "上云（按现有配置）"},
	"cloudRight":                   {"Cloud right-sized", "上云（优化规格）"},
	"compute":                      {"Compute", "计算"},
	"storage":                      {"Storage", "存储"},
	"licences":                     {"Licences", "许可"},
	"facilities":                   {"Facilities", "机房设施"},
	"labour":                       {"Labour", "人力"},
	"total":                        {"Total per month", "每月合计"},
	"idle":                         {"Idle servers (p95 CPU < %g %%)", "闲置服务器（p95 CPU < %g %%）"},
	"zombie":                       {"Zombie servers (p95 CPU < %g %%, no connection): retire", "僵尸服务器（p95 CPU < %g %%，无连接）：建议下线"},
	"measured":                     {"Hosts with utilisation data", "有利用率数据的主机"},
	"cashFlow":                     {"Cash flow by year", "逐年现金流"},
	"year":                         {"Year", "年度"},
	"stay":                         {"Stay on premises", "留在本地"},
	"onPremRemaining":              {"On premises (not yet moved)", "本地（尚未迁移）"},
	"cloud":                        {"Cloud", "云"},
	"migration":                    {"Migration", "迁移"},
	"savingsYear":                  {"Savings", "节省"},
	"cumulative":                   {"Cumulative", "累计"},
	"assumptions":                  {"Assumptions", "假设"},
	"chartReadiness":               {"Readiness", "就绪情况"},
	"chartCost":                    {"Monthly cost: as-is vs right-sized", "每月费用：现有配置 vs 优化规格"},
	"chartData":                    {"Data per wave (GiB)", "每批数据量（GiB）"},
	"chartCalendar":                {"Wave calendar", "批次日历"},
	"notReadyHosts":                {"Hosts not ready or needing actions", "未就绪或需处理的主机"},
	"page":                         {"Page", "页"},
	"a.computePerVcpuMonth":        {"On-premises compute per vCPU-month", "本地计算（每 vCPU 每月）"},
	"a.storagePerGibMonth":         {"On-premises storage per GiB-month", "本地存储（每 GiB 每月）"},
	"a.windowsLicencePerVcpuMonth": {"Windows licence per vCPU-month", "Windows 许可（每 vCPU 每月）"},
	"a.virtualisationPerVcpuMonth": {"Hypervisor licence per vCPU-month", "虚拟化许可（每 vCPU 每月）"},
	"a.facilitiesPerServerMonth":   {"Facilities per server-month", "机房设施（每台每月）"},
	"a.adminCostPerYear":           {"Administrator cost per year", "管理员年成本"},
	"a.serversPerAdmin":            {"Servers per administrator", "每名管理员负责服务器数"},
	"a.cloudLabourShare":           {"Labour remaining in the cloud", "上云后保留的人力比例"},
	"a.migrationPerServer":         {"Migration cost per server (once)", "每台迁移费用（一次性）"},
	"a.years":                      {"Years", "年数"},
	"a.idleCpuPercent":             {"Idle below p95 CPU %", "闲置阈值（p95 CPU %）"},
	"a.zombieCpuPercent":           {"Zombie below p95 CPU %", "僵尸阈值（p95 CPU %）"},
}

// L is a report label in lang, formatted with args when given.
func L(lang, key string, args ...any) string {
	l, ok := labels[key]
	if !ok {
		return key
	}
	s := l[0]
	if i18n.Normalize(lang) == "zh-CN" {
		s = l[1]
	}
	if len(args) > 0 {
		return fmt.Sprintf(s, args...)
	}
	return s
}

// findings joins the texts of one kind of findings in lang.
func findings(lang string, fs []i18n.Finding, kind string) string {
	return strings.Join(i18n.Texts(lang, i18n.Of(fs, kind)), "; ")
}

// readinessLabel names a readiness value in lang.
func readinessLabel(lang, r string) string {
	if _, ok := labels[r]; ok {
		return L(lang, r)
	}
	return r
}
