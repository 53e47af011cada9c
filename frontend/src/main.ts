import { createApp } from 'vue'
import urql from '@urql/vue'
import ElementPlus from 'element-plus'
import 'element-plus/dist/index.css'
import './style.css'
import App from './App.vue'
import { i18n } from './i18n'
import { router } from './router'
import { createClient } from './api/client'

const app = createApp(App)
app.use(ElementPlus)
app.use(i18n)
app.use(router)
app.use(urql, createClient())
app.mount('#app')
