import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router'
import { session, fetchMe, type Role, can } from '@/api/auth'

declare module 'vue-router' {
  interface RouteMeta {
    public?: boolean
    title?: string // i18n key
    minRole?: Role
  }
}

// Screens are lazy so each becomes its own chunk.
const routes: RouteRecordRaw[] = [
  { path: '/signin', name: 'signin', component: () => import('@/screens/signin/SignIn.vue'), meta: { public: true } },
  {
    path: '/',
    component: () => import('@/layout/AppShell.vue'),
    children: [
      { path: '', redirect: { name: 'dashboard' } },
      { path: 'dashboard', name: 'dashboard', component: () => import('@/screens/dashboard/Dashboard.vue'), meta: { title: 'nav.dashboard' } },
      { path: 'inventory', name: 'inventory', component: () => import('@/screens/inventory/Inventory.vue'), meta: { title: 'nav.inventory' } },
      { path: 'hosts/:id', name: 'host', component: () => import('@/screens/host/HostDetail.vue'), props: true, meta: { title: 'nav.inventory' } },
      { path: 'discovery', name: 'discovery', component: () => import('@/screens/discovery/Discovery.vue'), meta: { title: 'nav.discovery' } },
      { path: 'topology', name: 'topology', component: () => import('@/screens/topology/Topology.vue'), meta: { title: 'nav.topology' } },
      { path: 'applications', name: 'applications', component: () => import('@/screens/applications/Applications.vue'), meta: { title: 'nav.applications' } },
      { path: 'assessment', name: 'assessment', component: () => import('@/screens/assessment/Assessment.vue'), meta: { title: 'nav.assessment' } },
      { path: 'business-case', name: 'business-case', component: () => import('@/screens/businesscase/BusinessCase.vue'), meta: { title: 'case.title' } },
      { path: 'plans', name: 'plans', component: () => import('@/screens/plans/Plans.vue'), meta: { title: 'nav.plans' } },
      { path: 'migrations', name: 'migrations', component: () => import('@/screens/migrations/Migrations.vue'), meta: { title: 'nav.migrations' } },
      { path: 'cloud-accounts', name: 'cloud', component: () => import('@/screens/cloudaccounts/CloudAccounts.vue'), meta: { title: 'nav.cloud' } },
      { path: 'admin', name: 'admin', component: () => import('@/screens/admin/Admin.vue'), meta: { title: 'nav.admin', minRole: 'admin' } },
      { path: 'audit', name: 'audit', component: () => import('@/screens/audit/AuditLog.vue'), meta: { title: 'nav.audit' } },
    ],
  },
  { path: '/:pathMatch(.*)*', redirect: { name: 'dashboard' } },
]

export const router = createRouter({ history: createWebHistory(), routes })

router.beforeEach(async (to) => {
  if (to.meta.public) return true
  if (!session.checked) await fetchMe()
  if (!session.user) return { name: 'signin', query: to.fullPath !== '/' ? { next: to.fullPath } : {} }
  if (to.meta.minRole && !can(to.meta.minRole)) return { name: 'dashboard' }
  return true
})
